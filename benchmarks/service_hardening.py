"""The service's failure modes of issue 12, measured against a real API process (`python -m service serve`)
with its own redis-server, as a new user would meet them.

Prints one line per probe: status codes, the API process's peak resident set (VmHWM, reset through
/proc/PID/clear_refs before each memory probe) and resident set afterwards, and how long a trickling
client keeps its connection. Run it against older code to get the "before" column:

    .venv/bin/python benchmarks/service_hardening.py                    # this checkout
    cd /tmp/old-checkout && /path/to/.venv/bin/python /path/to/benchmarks/service_hardening.py --code .

Memory probes (the issue's reproduction): a zip of `--zip-files` silent 8-channel 384 kHz 16-bit WAVs of
`--file-mb` MB each (a few MB compressed), then `--uploads` concurrent uploads of `--upload-mib` MiB of
8-channel 384 kHz noise. The zip is extracted to the API's storage (zip-files x file-mb on disk).
Trickle probes send one byte every `--trickle-every` s and give up after `--give-up` s. Linux only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import redis
import soundfile as sf

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_redis(directory: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    cmd += ["--appendonly", "yes", "--save", ""]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=1)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def wav(path: Path, nbytes: int, silent: bool, rate: int = 384_000, channels: int = 8) -> Path:
    frames = (nbytes - 1024) // (2 * channels)
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16") as out:
        for start in range(0, frames, rate):
            n = min(rate, frames - start)
            block = np.zeros((n, channels)) if silent else 0.1 * rng.standard_normal((n, channels))
            out.write(block.astype(np.float32))
    return path


def small_wav(path: Path, samples: np.ndarray, subtype: str = "PCM_16") -> bytes:
    sf.write(path, samples.astype(np.float32), 16_000, subtype=subtype)
    return path.read_bytes()


def trickle(port: int, head: bytes, every: float, give_up: float, incoming: Path | None = None) -> str:
    """Seconds until the server answered or closed a client that sends one byte every `every` s (and, with
    `incoming`, how many partial upload files the server holds at that moment)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head)
        start = time.monotonic()
        while time.monotonic() - start < give_up:
            s.settimeout(every)
            try:
                answer = s.recv(200)
                code = answer[9:12].decode() if answer.startswith(b"HTTP/1.1") else "closed"
                return f"{code} after {time.monotonic() - start:.1f} s"
            except TimeoutError:
                pass
            except ConnectionResetError:
                return f"reset after {time.monotonic() - start:.1f} s"
            try:
                s.sendall(b"\0")
            except (BrokenPipeError, ConnectionResetError):
                return f"closed after {time.monotonic() - start:.1f} s"
        held = f", {len(list(incoming.glob('*.part')))} partial file(s) held" if incoming else ""
        return f"still open after {give_up:.0f} s{held}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to run")
    parser.add_argument("--zip-files", type=int, default=20)
    parser.add_argument("--file-mb", type=float, default=100.0)
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--upload-mib", type=float, default=100.0)
    parser.add_argument("--trickle-every", type=float, default=4.0)
    parser.add_argument("--give-up", type=float, default=60.0)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from service.auth import create_key
    from service.keys import Keys

    work = Path(tempfile.mkdtemp(prefix="hardening-"))
    redis_proc, redis_port = start_redis(work / "redis")
    port, prefix = free_port(), "bench:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINGSONG_")}
    env.update(
        SINGSONG_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        SINGSONG_REDIS_PREFIX=prefix,
        SINGSONG_STORAGE_DIR=str(work / "storage"),
        SINGSONG_RATE_LIMIT_PER_S="1000",
        SINGSONG_RATE_LIMIT_BURST="1000",
        PYTHONPATH=str(args.code.resolve()),
        OMP_NUM_THREADS="1",
    )
    cmd = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    api_proc = subprocess.Popen(cmd, env=env, cwd=args.code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        key, _ = create_key(redis.Redis(port=redis_port, decode_responses=True), Keys(prefix), "bench")
        headers = {"Authorization": f"Bearer {key}"}
        client = httpx.Client(base_url=base, headers=headers, timeout=600)
        run_probes(args, client, api_proc.pid, port, work, redis_proc, redis_port)
    finally:
        api_proc.terminate()
        api_proc.wait(30)
        redis_proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def run_probes(args, client: httpx.Client, pid: int, port: int, work: Path, redis_proc, redis_port: int) -> None:
    def show(item: str, text: str) -> None:
        print(f"{item:<34} {text}", flush=True)

    def probe(item: str, send, describe=lambda r: str(r.status_code)) -> httpx.Response | None:
        """One request, retried once on a connection the server dropped (old code closes after a 500)."""
        for attempt in range(2):
            try:
                r = send()
                show(item, describe(r))
                return r
            except httpx.TransportError as error:
                if attempt:
                    show(item, f"no answer ({type(error).__name__})")
        return None

    tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(32_000) / 16_000)
    job = client.post("/v1/jobs", files={"audio": ("v.wav", small_wav(work / "v.wav", tone))})
    job_id = job.json()["id"]
    show("baseline: POST /v1/jobs (2 s vocal)", str(job.status_code))
    show("idle API RSS", f"{status_mib(pid, 'VmRSS'):.0f} MiB")

    # 1. long multipart boundary
    boundary = "b" * 300
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\nx\r\n--{boundary}--\r\n'
    )
    ctype = {"content-type": f"multipart/form-data; boundary={boundary}"}
    for route in ("/v1/jobs", "/v1/batches"):
        probe(f"1. 300-char boundary {route}", lambda route=route: client.post(route, content=body, headers=ctype))

    # 5. bad audio
    huge = tone.copy()
    huge[100] = 1e30
    for name, data in (
        ("float WAV with 1e30", small_wav(work / "h.wav", huge, "FLOAT")),
        ("1-sample WAV", small_wav(work / "one.wav", np.array([0.5]))),
        ("10 ms tone", small_wav(work / "blip.wav", tone[:160])),
    ):
        probe(
            f"5. {name}",
            lambda name=name, data=data: client.post("/v1/jobs", files={"audio": (name, data)}),
            lambda r: f"{r.status_code} {r.text[:100] if r.status_code != 202 else ''}",
        )

    # 7. HEAD, NaN options, OpenAPI
    show("7. HEAD /v1/jobs/{id}", str(client.head(f"/v1/jobs/{job_id}").status_code))
    r = client.post(
        "/v1/jobs", files={"audio": ("v.wav", small_wav(work / "v.wav", tone))}, data={"temperature": "nan"}
    )
    show("7. temperature=nan", f"{r.status_code} {r.json().get('detail', '')}")
    spec = client.get("/openapi.json").json()
    documented = sorted({code for path in spec["paths"].values() for op in path.values() for code in op["responses"]})
    show("7. statuses in the OpenAPI", " ".join(documented))

    # 3. memory
    silent = wav(work / "silent.wav", int(args.file_mb * 1e6), silent=True)
    archive = work / "silent.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(args.zip_files):
            zf.write(silent, f"take{i:02d}.wav")
    silent.unlink()
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    size = f"{archive.stat().st_size / MiB:.1f} MiB zip"

    def send_zip() -> httpx.Response:
        with archive.open("rb") as fh:
            return client.post("/v1/batches", files={"files": ("silent.zip", fh, "application/zip")})

    probe(
        f"3. zip {args.zip_files}x{args.file_mb:g} MB silent 8ch 384k", send_zip, lambda r: f"{r.status_code}, {size}"
    )
    show("   API peak RSS / RSS after", f"{status_mib(pid, 'VmHWM'):.0f} / {status_mib(pid, 'VmRSS'):.0f} MiB")
    archive.unlink()
    loud = wav(work / "loud.wav", int(args.upload_mib * MiB) - 4096, silent=False)
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    codes: list[int] = []

    def upload() -> None:
        with loud.open("rb") as fh:
            try:
                codes.append(client.post("/v1/jobs", files={"audio": ("loud.wav", fh, "audio/wav")}).status_code)
            except httpx.TransportError:
                codes.append(0)  # no answer

    threads = [threading.Thread(target=upload) for _ in range(args.uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    show(f"3. {args.uploads} concurrent {args.upload_mib:g} MiB uploads", " ".join(map(str, sorted(codes))))
    show("   API peak RSS / RSS after", f"{status_mib(pid, 'VmHWM'):.0f} / {status_mib(pid, 'VmRSS'):.0f} MiB")

    # 4. trickling clients
    every, give_up = args.trickle_every, args.give_up
    show(f"4. header byte every {every:g} s", trickle(port, b"GET /healthz HTTP/1.1\r\n", every, give_up))
    part = b'--xyz\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
    head = (
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 1000000\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n%s" % (client.headers["authorization"].encode(), part)
    )
    incoming = work / "storage" / "incoming"
    show(f"4. body byte every {every:g} s", trickle(port, head, every, give_up, incoming))
    time.sleep(0.5)
    show("   partial upload files left after", str(len(list(incoming.glob("*.part")))))

    # 2. Redis outage
    redis_proc.kill()
    redis_proc.wait()
    retry_after = lambda r: f"{r.status_code} Retry-After={r.headers.get('retry-after')}"  # noqa: E731
    probe("2. Redis down: GET /v1/jobs/{id}", lambda: client.get(f"/v1/jobs/{job_id}"), retry_after)
    vocal = small_wav(work / "v.wav", tone)
    probe(
        "2. Redis down: POST /v1/jobs", lambda: client.post("/v1/jobs", files={"audio": ("v.wav", vocal)}), retry_after
    )


if __name__ == "__main__":
    main()
