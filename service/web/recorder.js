// Microphone recording: MediaRecorder for the file, a Web Audio AnalyserNode for the level meter, and a
// metronome (a one-bar count-in, optionally a click all along) scheduled on the AudioContext clock, which
// unlike setTimeout does not drift or stutter (the "two clocks" pattern: a coarse timer looks ahead and
// schedules sample-accurate clicks).
//
// Browser processing (echo cancellation, noise suppression, automatic gain) is switched off: it is tuned for
// speech and smears a sung melody. The price is that a click played through speakers is recorded too, hence
// the "use headphones" advice next to the option.

const MIME_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4", "audio/webm"];
const EXTENSIONS = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a" };
const BEATS_PER_BAR = 4;
const LOOKAHEAD_S = 0.2;
const SCHEDULER_MS = 50;
const FLOOR_DB = -60;

/** Why recording is impossible here, or "" when it works. */
export function recordingUnavailable() {
  if (!window.isSecureContext) return "Recording needs HTTPS (or localhost). Upload a file instead.";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
    return "This browser cannot record audio. Upload a file instead.";
  }
  return "";
}

function click(ctx, time, accent) {
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.value = accent ? 1760 : 1320;
  gain.gain.setValueAtTime(0.0001, time);
  gain.gain.exponentialRampToValueAtTime(accent ? 0.6 : 0.35, time + 0.002);
  gain.gain.exponentialRampToValueAtTime(0.0001, time + 0.05);
  osc.connect(gain).connect(ctx.destination);
  osc.start(time);
  osc.stop(time + 0.06);
}

function stamp() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
}

export class Recorder {
  /**
   * @param {{onLevel: (level: number, hot: boolean) => void, onTime: (seconds: number) => void,
   *          onCountIn: (beatsLeft: number) => void, onAutoStop: () => void}} handlers
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.state = "idle"; // idle | counting | recording
  }

  /** Ask for the microphone, count in, record. Resolves once recording has actually started. */
  async start({ countIn, clickAlong, bpm, maxSeconds }) {
    this.state = "counting"; // from now on stop() cancels, also while the browser asks for permission
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    if (this.state === "idle") {
      stream.getTracks().forEach((track) => track.stop());
      return false;
    }
    this.stream = stream;
    this.ctx = new AudioContext();
    await this.ctx.resume();
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 2048;
    this.ctx.createMediaStreamSource(this.stream).connect(this.analyser);
    this.meter();

    const beat = 60 / bpm;
    const first = this.ctx.currentTime + 0.15;
    const startAt = first + (countIn ? BEATS_PER_BAR * beat : 0);
    this.nextBeat = { time: first, index: 0 };
    this.clickUntil = clickAlong ? Infinity : startAt - beat / 2;
    if (countIn || clickAlong) {
      this.scheduler = setInterval(() => this.schedule(beat), SCHEDULER_MS);
      this.schedule(beat);
    }
    this.state = countIn ? "counting" : "recording";
    while (countIn && this.state === "counting" && this.ctx.currentTime < startAt) {
      this.handlers.onCountIn(Math.min(BEATS_PER_BAR, Math.ceil((startAt - this.ctx.currentTime) / beat)));
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    if (this.state === "idle") return false; // cancelled during the count-in
    this.begin(maxSeconds);
    return true;
  }

  schedule(beat) {
    while (this.nextBeat.time < this.ctx.currentTime + LOOKAHEAD_S && this.nextBeat.time < this.clickUntil) {
      click(this.ctx, this.nextBeat.time, this.nextBeat.index % BEATS_PER_BAR === 0);
      this.nextBeat = { time: this.nextBeat.time + beat, index: this.nextBeat.index + 1 };
    }
  }

  begin(maxSeconds) {
    const mimeType = MIME_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
    this.media = new MediaRecorder(this.stream, mimeType ? { mimeType } : undefined);
    this.chunks = [];
    this.media.ondataavailable = (event) => event.data.size && this.chunks.push(event.data);
    this.media.start();
    this.state = "recording";
    this.started = performance.now();
    this.timer = setInterval(() => {
      const seconds = (performance.now() - this.started) / 1000;
      this.handlers.onTime(seconds);
      if (maxSeconds && seconds >= maxSeconds) this.handlers.onAutoStop();
    }, 100);
  }

  meter() {
    const data = new Float32Array(this.analyser.fftSize);
    const tick = () => {
      if (!this.analyser) return;
      this.analyser.getFloatTimeDomainData(data);
      let sum = 0;
      let peak = 0;
      for (const x of data) {
        sum += x * x;
        peak = Math.max(peak, Math.abs(x));
      }
      const db = 10 * Math.log10(sum / data.length + 1e-12);
      this.handlers.onLevel(Math.min(1, Math.max(0, (db - FLOOR_DB) / -FLOOR_DB)), peak > 0.98);
      this.frame = requestAnimationFrame(tick);
    };
    tick();
  }

  /** Stop: resolves {blob, seconds, name}, or null when stopped during the count-in. */
  async stop() {
    const wasRecording = this.state === "recording";
    this.state = "idle";
    let result = null;
    if (wasRecording && this.media) {
      const seconds = (performance.now() - this.started) / 1000;
      const done = new Promise((resolve) => (this.media.onstop = resolve));
      this.media.stop();
      await done;
      const type = (this.media.mimeType || "audio/webm").split(";")[0];
      const blob = new Blob(this.chunks, { type });
      result = { blob, seconds, name: `recording-${stamp()}.${EXTENSIONS[type] || "webm"}` };
    }
    this.release();
    return result;
  }

  release() {
    this.state = "idle";
    clearInterval(this.scheduler);
    clearInterval(this.timer);
    cancelAnimationFrame(this.frame);
    this.analyser = null;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.ctx) this.ctx.close();
    this.stream = this.ctx = this.media = null;
    this.handlers.onLevel(0, false);
  }
}
