// The page: choose a vocal (record or upload), send it, follow the job, show and offer the result.
//
// One state at a time, mirrored on <body data-state="idle|working|error|result"> (CSS and the browser tests
// key on it). Every run of send() gets a fresh token; a poll loop whose token is stale (the person cancelled,
// retried or started over) stops by itself. Anything that came from outside - file names, the API's
// messages, job fields - reaches the page through textContent or element properties, never as HTML.

import { Api, ApiError, explain, storedKey, storeKey } from "./api.js";
import { Options } from "./options.js";
import { Recorder, recordingUnavailable } from "./recorder.js";
import { decode, WavePicture } from "./waveform.js";

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const POLL_MS = [300, 500, 800, 1000]; // quick first looks (short jobs), then once a second
const NETWORK_RETRIES = 5;
const JOB_STORAGE = "singsong.job"; // per tab: a reload (or a phone discarding the tab) finds its job again

const api = new Api(() => $("api-key").value.trim());
const options = new Options();
const wave = new WavePicture($("wave"), [$("mix-audio"), $("acc-audio")]);
const state = { vocal: null, vocalBuffer: null, job: null, run: 0, urls: [], previewUrl: null, retryTimer: null };

function clock(seconds) {
  const s = Math.max(0, seconds);
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;
}

function bytes(n) {
  const mb = n / 1048576;
  return mb >= 1 ? `${mb.toFixed(mb >= 10 ? 0 : 1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`;
}

function show(name) {
  document.body.dataset.state = name;
  $("status").hidden = name !== "working";
  $("error").hidden = name !== "error";
  $("result").hidden = name !== "result";
  $("submit").disabled = name === "working" || !state.vocal;
  const card = { working: "status", error: "error", result: "result" }[name];
  if (card) $(card).scrollIntoView({ behavior: "smooth", block: "nearest" });
}

// ------------------------------------------------------------------------------------------- the vocal
function setVocal(blob, name, seconds) {
  state.vocal = { blob, name };
  state.vocalBuffer = null;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(blob);
  $("vocal-audio").src = state.previewUrl;
  $("vocal-name").textContent = `${name} · ${bytes(blob.size)}`;
  $("vocal-duration").textContent = seconds ? clock(seconds) : "…";
  $("vocal-preview").hidden = false;
  $("submit").disabled = document.body.dataset.state === "working";
  if (document.body.dataset.state !== "working") show("idle");
}

$("vocal-audio").addEventListener("loadedmetadata", (event) => {
  const audio = event.target;
  if (audio.duration === Infinity) {
    // MediaRecorder's webm has no duration in its header; seeking past the end makes the browser find it
    // (and gives the replay control a usable seek bar).
    audio.addEventListener("durationchange", () => (audio.currentTime = 0), { once: true });
    audio.currentTime = 1e101;
  }
});
$("vocal-audio").addEventListener("durationchange", (event) => {
  const duration = event.target.duration;
  if (Number.isFinite(duration) && duration > 0) $("vocal-duration").textContent = clock(duration);
});
$("vocal-audio").addEventListener("error", () => {
  if (state.vocal) $("vocal-duration").textContent = "no preview in this browser";
});

function chooseFile(file) {
  if (!file) return;
  selectTab("upload");
  setVocal(file, file.name, 0);
}

$("file").addEventListener("change", (event) => chooseFile(event.target.files[0]));
for (const type of ["dragenter", "dragover"]) {
  $("vocal").addEventListener(type, (event) => {
    event.preventDefault();
    $("drop").classList.add("over");
  });
}
$("vocal").addEventListener("dragleave", (event) => {
  if (!$("vocal").contains(event.relatedTarget)) $("drop").classList.remove("over");
});
$("vocal").addEventListener("drop", (event) => {
  event.preventDefault();
  $("drop").classList.remove("over");
  chooseFile(event.dataTransfer.files[0]);
});

function selectTab(which) {
  for (const tab of ["record", "upload"]) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === which));
    $(`${tab}-panel`).hidden = tab !== which;
  }
}
$("tab-record").addEventListener("click", () => selectTab("record"));
$("tab-upload").addEventListener("click", () => selectTab("upload"));

// ------------------------------------------------------------------------------------------- recording
const recorder = new Recorder({
  onLevel: (level, hot) => {
    $("meter-fill").style.transform = `scaleX(${level})`;
    $("meter-fill").classList.toggle("hot", hot);
  },
  onTime: (seconds) => ($("record-time").textContent = clock(seconds)),
  onCountIn: (beats) => ($("record-time").textContent = `${beats}…`),
  onAutoStop: () => stopRecording(`Stopped at this service's limit of ${state.maxSeconds} s.`),
});

function recordingUi(on, label) {
  $("record").classList.toggle("on", on);
  $("record").setAttribute("aria-pressed", String(on));
  $("record-label").textContent = label;
  document.body.classList.toggle("recording", on);
}

async function startRecording() {
  const note = $("record-note");
  note.hidden = true;
  recordingUi(true, "Stop");
  try {
    const started = recorder.start({
      countIn: $("count-in").checked,
      clickAlong: $("click").checked,
      bpm: Math.min(240, Math.max(40, Number($("bpm").value) || 100)),
      maxSeconds: state.maxSeconds,
    });
    if (await started) document.body.dataset.recording = "on";
  } catch (error) {
    recorder.release();
    recordingUi(false, "Record");
    note.textContent = `The microphone is not available: ${error.message || error.name}.`;
    note.hidden = false;
  }
}

async function stopRecording(message = "") {
  const result = await recorder.stop();
  recordingUi(false, "Record again");
  delete document.body.dataset.recording;
  $("record-note").textContent = message;
  $("record-note").hidden = !message;
  if (result) {
    $("record-time").textContent = clock(result.seconds);
    setVocal(result.blob, result.name, result.seconds);
  } else {
    $("record-time").textContent = clock(0);
  }
}

$("record").addEventListener("click", () => (recorder.state === "idle" ? startRecording() : stopRecording()));

// ------------------------------------------------------------------------------------------- the job
async function send() {
  if (!state.vocal) return show("idle"); // e.g. "Try again" after a reload: the vocal stayed on the old page
  const fields = options.fields();
  if (!fields) return;
  const run = ++state.run;
  const form = new FormData();
  form.append("audio", state.vocal.blob, state.vocal.name);
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  clearResult();
  state.started = Date.now();
  progress("Uploading…", 0);
  show("working");
  try {
    const job = await api.submit(form, (fraction) => progress(`Uploading… ${Math.round(100 * fraction)} %`, 0));
    await follow(job, run);
  } catch (error) {
    if (run === state.run) fail(error);
  }
}

function progress(text, value) {
  $("status-text").textContent = text;
  $("progress").value = value;
  $("elapsed").textContent = state.started ? `${Math.round((Date.now() - state.started) / 1000)} s` : "";
}

async function follow(job, run) {
  state.job = job;
  remember(job.id);
  let polls = 0;
  let failures = 0;
  while (run === state.run) {
    if (job.status === "succeeded") return showResult(job, run);
    if (job.status === "failed" || job.status === "cancelled") remember("");
    if (job.status === "failed") throw new JobFailed(job);
    if (job.status === "cancelled") return show("idle");
    if (job.status === "queued") {
      const position = job.queue_position;
      progress(position === 1 ? "Next in the queue…" : `Waiting in the queue: position ${position ?? "?"}`, 0);
    } else {
      progress(`Generating the accompaniment… ${Math.round(100 * job.progress)} %`, job.progress);
    }
    await sleep(POLL_MS[Math.min(polls++, POLL_MS.length - 1)]);
    if (run !== state.run) return;
    try {
      job = await api.job(job.id);
      state.job = job;
      failures = 0;
    } catch (error) {
      // Polling rides out rate limits and short outages; anything else (401, 404) is for the person.
      if (error.status === 429) await sleep(1000 * (error.retryAfter || 1));
      else if (error.status === 0 || error.status >= 502) {
        if (++failures > NETWORK_RETRIES) throw error;
        await sleep(500 * 2 ** failures);
      } else throw error;
    }
  }
}

function remember(id) {
  try {
    if (id) sessionStorage.setItem(JOB_STORAGE, id);
    else sessionStorage.removeItem(JOB_STORAGE);
  } catch {
    /* storage disabled: no resuming */
  }
}

function remembered() {
  try {
    return sessionStorage.getItem(JOB_STORAGE) || "";
  } catch {
    return "";
  }
}

/** After a reload: follow this tab's last job again (or show its result). */
async function resume(id) {
  const run = ++state.run;
  state.started = Date.now();
  progress("Looking up your last job…", 0);
  show("working");
  try {
    await follow(await api.job(id), run);
  } catch (error) {
    if (run !== state.run) return;
    if (error.status === 404) {
      remember(""); // expired or deleted meanwhile: nothing to resume
      show("idle");
    } else fail(error);
  }
}

class JobFailed extends Error {
  constructor(job) {
    super(job.error || "the job failed");
    this.job = job;
  }
}

function fail(error) {
  const info =
    error instanceof JobFailed
      ? { title: "The accompaniment could not be made", message: error.message, hint: "Try again; another seed may help." }
      : explain(error);
  $("error-title").textContent = info.title;
  $("error-message").textContent = info.message;
  $("error-hint").textContent = info.hint;
  $("error").dataset.status = error instanceof ApiError ? String(error.status) : "job";
  if (error instanceof ApiError && error.status === 401) {
    $("key-panel").hidden = false;
    $("api-key").focus();
  }
  countdown(info.retryAfter || 0);
  show("error");
}

function countdown(seconds) {
  clearInterval(state.retryTimer);
  const button = $("retry");
  const tick = () => {
    button.disabled = seconds > 0;
    button.textContent = seconds > 0 ? `Try again in ${seconds} s` : "Try again";
    if (seconds-- <= 0) clearInterval(state.retryTimer);
  };
  tick();
  state.retryTimer = setInterval(tick, 1000);
}

$("submit").addEventListener("click", send);
$("retry").addEventListener("click", send);
$("cancel").addEventListener("click", async () => {
  const job = state.job;
  state.run++;
  remember("");
  show("idle");
  if (job) await api.cancel(job.id).catch(() => {});
});

// ------------------------------------------------------------------------------------------- the result
function clearResult() {
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.urls = [];
  for (const id of ["mix-audio", "acc-audio"]) $(id).removeAttribute("src");
  for (const id of ["mix-download", "acc-download"]) $(id).hidden = true;
  delete $("result").dataset.take;
}

async function showResult(job, run) {
  progress("Fetching the result…", 1);
  const takes = $("takes");
  takes.replaceChildren(
    ...job.results.map((r, i) => {
      const tab = document.createElement("button");
      tab.type = "button";
      tab.setAttribute("role", "tab");
      tab.textContent = `Take ${i + 1}`;
      tab.addEventListener("click", () => loadTake(job, i, state.run).catch(fail));
      return tab;
    }),
  );
  takes.hidden = job.results.length < 2;
  // Warnings about the input (e.g. "little or no sung melody: ..."), from the job status.
  const warnings = Array.isArray(job.warnings) ? job.warnings : [];
  $("warnings").textContent = warnings.map((w) => `Note: ${w}`).join("\n");
  $("warnings").hidden = warnings.length === 0;
  await loadTake(job, 0, run);
}

async function loadTake(job, index, run) {
  const take = job.results[index];
  const [mix, acc] = await Promise.all([
    api.download(take.mix, `mix-take${index}.${job.options.format}`),
    api.download(take.accompaniment, `accompaniment-take${index}.${job.options.format}`),
  ]);
  if (run !== state.run) return;
  clearResult();
  for (const [file, player, link] of [
    [mix, "mix-audio", "mix-download"],
    [acc, "acc-audio", "acc-download"],
  ]) {
    const url = URL.createObjectURL(file.blob);
    state.urls.push(url);
    $(player).src = url;
    $(link).href = url;
    $(link).download = file.name;
    $(link).hidden = false;
  }
  [...$("takes").children].forEach((tab, i) => tab.setAttribute("aria-selected", String(i === index)));
  describe(job, take);
  $("result").dataset.take = String(index);
  show("result");
  if (state.vocal) state.vocalBuffer = state.vocalBuffer || (await decode(state.vocal.blob));
  const missing = state.vocal ? "cannot be drawn in this browser" : "not kept after a reload";
  wave.show([
    { buffer: state.vocalBuffer, color: "--vocal", label: "vocal", missing },
    { buffer: await decode(acc.blob), color: "--acc", label: "accompaniment", missing: "cannot be drawn in this browser" },
  ]);
}

function describe(job, take) {
  const rows = Options.describe(job);
  if (job.results.length > 1) rows.splice(1, 0, ["Seed of this take", String(take.seed)]);
  $("settings").replaceChildren(
    ...rows.flatMap(([label, value]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = label;
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

// Only one player at a time: the mix and the accompaniment over each other would be a mess.
for (const player of document.querySelectorAll("audio")) {
  player.addEventListener("play", () => {
    for (const other of document.querySelectorAll("audio")) if (other !== player) other.pause();
  });
}

$("reuse").addEventListener("click", () => {
  if (!state.job) return;
  options.fill(state.job.options);
  $("advanced").open = true;
  $("options").scrollIntoView({ behavior: "smooth" });
});

$("again").addEventListener("click", () => {
  state.run++;
  remember("");
  clearResult();
  state.vocal = null;
  $("vocal-preview").hidden = true;
  $("vocal-audio").removeAttribute("src");
  $("file").value = "";
  show("idle");
  window.scrollTo({ top: 0, behavior: "smooth" });
});

// ------------------------------------------------------------------------------------------- start-up
$("api-key").value = storedKey();
$("api-key").addEventListener("change", () => storeKey($("api-key").value.trim()));
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault(); // Enter in the key field stores it; nothing is sent anywhere
  storeKey($("api-key").value.trim());
});
$("forget-key").addEventListener("click", () => {
  $("api-key").value = "";
  storeKey("");
});

async function init() {
  const unavailable = recordingUnavailable();
  if (unavailable) {
    $("record").disabled = true;
    $("record-note").textContent = unavailable;
    $("record-note").hidden = false;
    selectTab("upload");
  }
  const [config, openapi] = await Promise.all([api.config().catch(() => null), api.openapi()]);
  state.maxSeconds = config ? config.max_seconds : null;
  if (config) {
    const minutes = config.max_seconds >= 120 ? `${Math.round(config.max_seconds / 60)} minutes` : `${config.max_seconds} s`;
    $("limits").textContent = `This service takes vocals of up to ${minutes} and ${bytes(config.max_upload_bytes)}.`;
  }
  $("key-panel").hidden = Boolean(config) && config.auth === "open";
  options.apply(openapi, config);
  document.body.dataset.ready = "true";
  if (remembered()) resume(remembered());
}

init();
