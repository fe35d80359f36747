// A picture of the result: the vocal and the accompaniment as two waveform lanes on one time axis, with a
// playhead that follows whichever player is playing; a click seeks and plays from there.
//
// Each lane is drawn from min/max peaks per pixel column (the classic DAW overview: every transient stays
// visible whatever the zoom, unlike plotting decimated samples). Both files are decoded in the browser with
// an OfflineAudioContext, which needs neither a user gesture nor an audio output device. The engine returns
// an accompaniment exactly as long as the vocal, so the lanes line up sample for sample.

const AXIS_PX = 18;
const GAP_PX = 6;
const TICK_STEPS = [0.5, 1, 2, 5, 10, 15, 30, 60, 120];

/** Decode an audio Blob to an AudioBuffer, or null when this browser cannot decode that format. */
export async function decode(blob) {
  try {
    const ctx = new OfflineAudioContext(1, 1, 44100);
    return await ctx.decodeAudioData(await blob.arrayBuffer());
  } catch {
    return null;
  }
}

/** Min/max of the channel mixdown per column: Float32Array [min0, max0, min1, max1, ...]. */
function peaks(buffer, columns, duration) {
  const out = new Float32Array(columns * 2);
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c));
  const perColumn = (duration * buffer.sampleRate) / columns;
  for (let col = 0; col < columns; col++) {
    const start = Math.floor(col * perColumn);
    const end = Math.min(buffer.length, Math.floor((col + 1) * perColumn));
    let lo = 0;
    let hi = 0;
    for (let i = start; i < end; i++) {
      let x = 0;
      for (const data of channels) x += data[i];
      x /= channels.length;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    out[2 * col] = lo;
    out[2 * col + 1] = hi;
  }
  return out;
}

function timeLabel(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds - 60 * m;
  return m ? `${m}:${String(Math.floor(s)).padStart(2, "0")}` : `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

export class WavePicture {
  /** @param {HTMLCanvasElement} canvas @param {HTMLAudioElement[]} players (their time drives the playhead) */
  constructor(canvas, players) {
    this.canvas = canvas;
    this.players = players;
    this.current = players[0];
    this.lanes = [];
    this.duration = 0;
    for (const player of players) {
      player.addEventListener("play", () => {
        this.current = player;
        this.follow();
      });
      player.addEventListener("seeked", () => this.render());
    }
    canvas.addEventListener("click", (event) => this.seek(event));
    new ResizeObserver(() => this.layout()).observe(canvas);
  }

  /** Lanes: [{buffer: AudioBuffer | null, color: CSS custom property, label, missing: why no buffer}]. */
  show(lanes) {
    this.lanes = lanes;
    this.duration = Math.max(0, ...lanes.filter((l) => l.buffer).map((l) => l.buffer.duration));
    this.canvas.dataset.drawn = String(lanes.filter((l) => l.buffer).length);
    this.layout();
  }

  layout() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (width !== this.canvas.width || height !== this.canvas.height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.background = this.paint(ratio);
    this.render();
  }

  /** The static picture (lanes, labels, axis) on an offscreen canvas; the playhead is drawn over it. */
  paint(ratio) {
    const { width, height } = this.canvas;
    const off = document.createElement("canvas");
    off.width = width;
    off.height = height;
    const g = off.getContext("2d");
    const style = getComputedStyle(this.canvas);
    const axis = AXIS_PX * ratio;
    const laneHeight = (height - axis - GAP_PX * ratio * (this.lanes.length - 1)) / Math.max(1, this.lanes.length);
    g.font = `${11 * ratio}px system-ui, sans-serif`;
    this.lanes.forEach((lane, i) => {
      const top = i * (laneHeight + GAP_PX * ratio);
      const middle = top + laneHeight / 2;
      g.fillStyle = style.getPropertyValue("--lane").trim() || "#8881";
      g.fillRect(0, top, width, laneHeight);
      g.fillStyle = style.getPropertyValue(lane.color).trim() || "#888";
      if (lane.buffer && this.duration > 0) {
        const p = peaks(lane.buffer, width, this.duration);
        // Each lane scaled to its own peak: a quiet vocal stays readable next to a loud accompaniment.
        const scale = (0.95 * laneHeight) / 2 / p.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-3);
        for (let x = 0; x < width; x++) {
          const y0 = middle - p[2 * x + 1] * scale;
          const y1 = middle - p[2 * x] * scale;
          g.fillRect(x, y0, 1, Math.max(ratio, y1 - y0));
        }
      }
      g.fillStyle = style.getPropertyValue("--ink").trim() || "#000";
      g.fillText(lane.buffer ? lane.label : `${lane.label}: ${lane.missing}`, 6 * ratio, top + 14 * ratio);
    });
    if (this.duration > 0) this.axis(g, style, width, height, axis, ratio);
    return off;
  }

  axis(g, style, width, height, axis, ratio) {
    const step = TICK_STEPS.find((s) => (s / this.duration) * width >= 70 * ratio) || TICK_STEPS.at(-1);
    g.fillStyle = style.getPropertyValue("--muted").trim() || "#666";
    for (let t = 0; t <= this.duration + 1e-6; t += step) {
      const x = Math.round((t / this.duration) * (width - 1));
      g.fillRect(x, height - axis, ratio, 4 * ratio);
      const label = timeLabel(t);
      const w = g.measureText(label).width;
      g.fillText(label, Math.min(Math.max(0, x - w / 2), width - w), height - 3 * ratio);
    }
  }

  render() {
    const g = this.canvas.getContext("2d");
    g.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.background) g.drawImage(this.background, 0, 0);
    if (this.duration > 0 && this.current) {
      const x = (this.current.currentTime / this.duration) * this.canvas.width;
      const ratio = window.devicePixelRatio || 1;
      g.fillStyle = getComputedStyle(this.canvas).getPropertyValue("--playhead").trim() || "#e33";
      g.fillRect(Math.round(x), 0, 2 * ratio, this.canvas.height - AXIS_PX * ratio);
    }
  }

  follow() {
    this.render();
    if (this.players.some((p) => !p.paused)) requestAnimationFrame(() => this.follow());
  }

  seek(event) {
    if (!this.duration || !this.current) return;
    const rect = this.canvas.getBoundingClientRect();
    this.current.currentTime = ((event.clientX - rect.left) / rect.width) * this.duration;
    this.current.play().catch(() => {});
  }
}
