"""The job queue: a bounded queue, a fixed number of worker threads, live events for each job.

A job runs one upscaler from the registry on one uploaded image, or draws one poster or animation
of the Art page (``JobRecord.kind``: one run function per kind; statuses and events are shared).
While it runs, its progress reports become events (``progress``; an upscale sends a preview image
about once a second, a poster an event per tile, an animation one per frame) that are pushed
to every subscriber of the job's event stream; when it ends, an ``end`` event. Subscribers are
asyncio queues of the web server's event loop, fed from the worker threads with
``call_soon_threadsafe``, so nothing polls.

Statuses: queued -> running -> done | failed | cancelled. A job the server stopped in the middle
is marked failed on the next start (``Store.fail_interrupted``), never left running.

A worker survives any job's error and any storage error: a job that cannot be switched to
running (a full disk: SQLite cannot write) stays queued and is retried, every few seconds, until
the write succeeds, so queued jobs run once space is back; a job's end that cannot be written is
kept in memory (``unsettled``, which the API shows) and written when the disk takes it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coordsr.errors import Cancelled, CoordsrError, StopEarly
from coordsr.progress import Progress
from coordsr.server.storage import JobRecord, Store, storage_refused

log = logging.getLogger("coordsr.server")

PREVIEW_INTERVAL = 1.0
"""Seconds between two live previews of a running job (the first is sent at once)."""
STORAGE_RETRY_S = (0.25, 5.0)
"""First and longest wait (doubling) before a worker tries a refused storage write again."""
FINAL = ("done", "failed", "cancelled")


UPLOAD_GRACE_S = 2.0
"""An upload counts toward the queue's room for its first seconds whatever its pace; then only
while it makes progress (``Upload.progressing``)."""


class QueueFull(Exception):
    """The job queue holds its maximum number of waiting jobs."""


@dataclass
class Upload:
    """An upload admitted by ``JobManager.admit``, while its body arrives (``received`` is told
    each chunk)."""

    min_rate: float
    """Bytes per second below which the upload stops counting toward the queue's room."""
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    bytes: int = 0
    complete: bool = False

    def received(self, n: int, more: bool) -> None:
        self.bytes += n
        self.last = time.monotonic()
        self.complete = self.complete or not more

    def progressing(self, now: float) -> bool:
        """Whether it holds one of the queue's places now: its body is all here, or it is young,
        or data came in the last ``UPLOAD_GRACE_S`` at ``min_rate`` on average. A client that
        trickles a byte now and then holds none (and is cut by the body's pace limit)."""
        age = now - self.started
        if self.complete or age < UPLOAD_GRACE_S:
            return True
        return now - self.last < UPLOAD_GRACE_S and self.bytes >= self.min_rate * age


def data_url(pixels: np.ndarray) -> str:
    """(H, W, C) floats in [0, 1] -> an 8-bit PNG as a data: URL (previews travel inside events)."""
    from coordsr.images import encode_image_bytes

    return "data:image/png;base64," + base64.b64encode(encode_image_bytes(pixels, "PNG", 8)).decode()


@dataclass
class LiveJob:
    """What the server keeps in memory about a queued or running job."""

    id: str
    created: float
    cancel: threading.Event = field(default_factory=threading.Event)
    keep: threading.Event = field(default_factory=threading.Event)
    """Set by "stop and keep": the fit ends at its next report and the field is drawn as it is."""
    history: list[dict] = field(default_factory=list)
    """Every fit progress report so far (no previews): the loss / PSNR curve."""
    preview: str | None = None
    """Latest preview as a data: URL."""
    last: dict | None = None
    """Latest progress event."""
    ended: bool = False
    _subscribers: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, name: str, data: dict) -> None:
        """Send an event to every subscriber (from any thread)."""
        with self._lock:
            if name == "progress":
                point = {k: data.get(k) for k in ("step", "total", "stage", "loss", "psnr")}
                if data.get("stage") == "fit":
                    self.history.append(point)
                if data.get("preview"):
                    self.preview = data["preview"]
                self.last = {k: v for k, v in data.items() if k != "preview"}
            if name == "end":
                self.ended = True
            subscribers = list(self._subscribers)
        for loop, q in subscribers:
            try:
                loop.call_soon_threadsafe(q.put_nowait, (name, data))
            except RuntimeError:  # that client's event loop is gone
                self.unsubscribe(q)

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> tuple[dict, asyncio.Queue]:
        """A snapshot of the job so far and a queue of the events after it (none lost between)."""
        q: asyncio.Queue = asyncio.Queue()
        with self._lock:
            snapshot = {"history": list(self.history), "preview": self.preview, "last": self.last,
                        "ended": self.ended}
            if not self.ended:
                self._subscribers.append((loop, q))
        return snapshot, q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = [(lp, sq) for lp, sq in self._subscribers if sq is not q]


class JobManager:
    """Runs jobs on ``workers`` threads from a queue of at most ``queue_size`` waiting jobs."""

    def __init__(self, store: Store, workers: int = 1, queue_size: int = 8, device: str = "auto"):
        if workers < 1:
            raise ValueError(f"need at least one worker, got {workers}")
        self.store = store
        self.device = device
        self.preview_interval = PREVIEW_INTERVAL
        """Seconds between two previews of a job (tests shorten it)."""
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=max(1, queue_size))
        self._uploads: list[Upload] = []  # admitted by ``admit``, their request not ended yet
        self._admit_lock = threading.Lock()
        self._live: dict[str, LiveJob] = {}
        self._live_lock = threading.Lock()
        # Settling a job and starting it hold this lock, so a cancel click cannot land between a
        # worker's "still queued?" check and its switch to running (the job would run, its cancel
        # would settle it, and its record would stay "running"). Reentrant: both paths call _finish.
        self._finish_lock = threading.RLock()
        self._stopping = threading.Event()
        self._unsettled: dict[str, dict] = {}  # job id -> the end its record could not be given
        self.retry_s = STORAGE_RETRY_S
        """(first, longest) wait before a refused storage write is tried again (tests shorten it)."""
        self._threads = [threading.Thread(target=self._work, name=f"coordsr-worker-{i}", daemon=True)
                         for i in range(workers)]
        self.recovered = store.fail_interrupted()
        if self.recovered:
            log.warning("marked %d interrupted job(s) as failed: %s", len(self.recovered),
                        ", ".join(self.recovered))
        for t in self._threads:
            t.start()

    # --- the web side ----------------------------------------------------------------------

    def submit(self, rec: JobRecord) -> LiveJob:
        """Queue a job whose record and input file exist; QueueFull when no room is left."""
        live = LiveJob(rec.id, rec.created)
        with self._live_lock:
            self._live[rec.id] = live
        try:
            self._queue.put_nowait(rec.id)
        except queue.Full:
            with self._live_lock:
                self._live.pop(rec.id, None)
            raise QueueFull(f"the job queue is full ({self._queue.maxsize} waiting); try again later") from None
        return live

    def live(self, job_id: str) -> LiveJob | None:
        with self._live_lock:
            return self._live.get(job_id)

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop; False when it is not active."""
        live = self.live(job_id)
        if live is None:
            return False
        live.cancel.set()
        with self._finish_lock:
            rec = self.store.get(job_id)
            if rec is not None and rec.status == "queued":  # never started: settle it now
                self._finish(live, "cancelled", error="cancelled before it started")
        return True

    def keep_current(self, job_id: str) -> bool:
        """Ask a running fit to stop at its next report and finish with the field as it is;
        False when the job is not active."""
        live = self.live(job_id)
        if live is None:
            return False
        live.keep.set()
        return True

    def waiting(self) -> int:
        return self._queue.qsize()

    def unsettled(self, job_id: str) -> dict | None:
        """The end (status, error, finished ...) of a job whose record could not be written yet
        (the disk is full), or None: what the API shows instead of the stale record."""
        with self._live_lock:
            changes = self._unsettled.get(job_id)
            return dict(changes) if changes else None

    def admit(self, min_rate: float = 1024.0) -> Upload | None:
        """Reserve room for one upload before its body is read; None when the jobs waiting and
        the uploads still being received that make progress (``Upload.progressing``: at least
        ``min_rate`` bytes a second) would fill the queue. Each Upload needs one ``admitted_done``.

        This is what keeps a burst of uploads from being read, decoded and then refused: the
        refusal comes first, and at most ``queue_size`` uploads that make progress are in the
        server at once; clients that trickle their bodies take no place from the others.
        """
        now = time.monotonic()
        with self._admit_lock:
            active = sum(1 for u in self._uploads if u.progressing(now))
            if self._queue.qsize() + active >= self._queue.maxsize:
                return None
            upload = Upload(min_rate=min_rate)
            self._uploads.append(upload)
            return upload

    def admitted_done(self, upload: Upload) -> None:
        with self._admit_lock:
            self._uploads = [u for u in self._uploads if u is not upload]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers: running jobs are interrupted and marked failed."""
        self._stopping.set()
        with self._live_lock:
            lives = list(self._live.values())
        for live in lives:
            live.cancel.set()
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                break
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # --- the worker side ---------------------------------------------------------------------

    def _work(self) -> None:
        if threading.current_thread() is self._threads[0]:
            warm_up()
        while True:
            try:
                job_id = self._queue.get(timeout=self.retry_s[1] if self._unsettled else None)
            except queue.Empty:
                self._settle_pending()
                continue
            if job_id is None:
                return
            live = self.live(job_id)
            try:
                self._settle_pending()
                if live is not None:
                    self._run(live)
            except BaseException:  # a worker never dies with a job: it fails the job and goes on
                log.exception("job %s: unexpected error in the worker", job_id)
                try:
                    if live is not None and not live.ended:
                        self._finish(live, "failed", error="internal error in the worker (see the server log)")
                except BaseException:  # pragma: no cover - _finish keeps what it cannot write
                    log.exception("job %s: could not settle it", job_id)
            finally:
                with self._live_lock:
                    self._live.pop(job_id, None)

    def _settle_pending(self) -> None:
        """Write the ends that a full disk refused earlier; those it still refuses wait again."""
        with self._live_lock:
            pending = list(self._unsettled.items())
        for job_id, changes in pending:
            with self._finish_lock:
                try:
                    self.store.update(job_id, **changes)
                    if self.store.get(job_id) is None:  # deleted meanwhile
                        shutil.rmtree(self.store.job_dir(job_id), ignore_errors=True)
                    log.info("job %s: its end (%s) is stored now", job_id, changes.get("status"))
                except Exception as exc:
                    if storage_refused(exc) is not None:
                        return  # still full: try again later
                    log.exception("job %s: cannot store its end; dropped", job_id)
                with self._live_lock:
                    self._unsettled.pop(job_id, None)

    def _finish(self, live: LiveJob, status: str, **changes) -> None:
        """Settle a job: its record, its last report, an ``end`` event. A record the disk refuses
        to write is kept in ``_unsettled`` (and written later); the event is sent all the same."""
        with self._finish_lock:
            if live.ended:
                return
            changes = {"status": status, "finished": time.time(), **changes}
            try:
                self.store.update(live.id, **changes)
                gone = self.store.get(live.id) is None
            except Exception as exc:
                why = storage_refused(exc)
                if why is None:
                    log.exception("job %s: cannot store its end", live.id)
                else:
                    log.error("job %s: cannot store its end (%s); kept until the disk takes it", live.id, why)
                with self._live_lock:
                    self._unsettled[live.id] = changes
                gone = False
            if gone:  # deleted while it ran: remove what it wrote since
                shutil.rmtree(self.store.job_dir(live.id), ignore_errors=True)
            elif live.last is not None:  # what a client that connects after the end is shown
                try:
                    (self.store.job_dir(live.id) / "last.json").write_text(json.dumps(live.last))
                except OSError:
                    log.warning("job %s: could not keep its last report", live.id)
            live.publish("end", {"status": status, "error": changes.get("error")})

    def _run(self, live: LiveJob) -> None:
        """Run a queued job to its end: the runner of its kind makes its files, this settles it."""
        delay = self.retry_s[0]
        while True:
            with self._finish_lock:  # see __init__: the start and a cancel are settled one after the other
                rec = self.store.get(live.id)
                if rec is None or rec.status != "queued" or live.ended:
                    return  # deleted or cancelled while it waited
                if self._stopping.is_set():
                    self._finish(live, "failed", error="interrupted: the server stopped before this job started")
                    return
                if live.cancel.is_set():
                    self._finish(live, "cancelled", error="cancelled before it started")
                    return
                try:
                    self.store.update(rec.id, status="running", started=time.time())
                    break
                except Exception as exc:
                    why = storage_refused(exc)
                    if why is None:
                        raise
            # A full disk: the job stays queued (it could not keep its result anyway) and its
            # start is tried again, so that it runs once there is space.
            log.warning("job %s: cannot start it (%s); trying again in %.2g s", live.id, why, delay)
            if self._stopping.wait(delay):
                continue  # settled as interrupted at the top
            delay = min(2 * delay, self.retry_s[1])
            self._settle_pending()
        live.publish("status", {"status": "running"})
        run = self._run_upscale if rec.kind == "upscale" else self._run_art
        try:
            final = run(live, rec, self.store.job_dir(rec.id))
        except Cancelled:
            if self._stopping.is_set():
                self._finish(live, "failed", error="interrupted: the server stopped while this job was running")
            else:
                self._finish(live, "cancelled", error="cancelled")
            return
        except (CoordsrError, ValueError, FloatingPointError, MemoryError) as exc:
            log.info("job %s failed: %s", rec.id, exc)
            self._finish(live, "failed", error=" ".join(str(exc).split()) or type(exc).__name__)
            return
        except Exception as exc:
            why = storage_refused(exc)
            if why is not None:
                log.error("job %s: storage refused its files: %s", rec.id, exc)
                self._finish(live, "failed", error=f"storage is full: cannot keep the job's files ({why})")
                return
            log.exception("job %s crashed", rec.id)
            self._finish(live, "failed", error=f"internal error: {type(exc).__name__}: {exc}")
            return
        self._finish(live, "done", **final)

    def _run_upscale(self, live: LiveJob, rec: JobRecord, folder: Path) -> dict:
        """An upload upscaled by a registry method: result.png, bicubic.png, maybe the field;
        returns the record's final changes."""
        from coordsr.images import read_image, write_image
        from coordsr.methods import METHODS
        from coordsr.methods.interpolation import bicubic
        from coordsr.render import render_field

        size = (rec.out_height, rec.out_width)
        cls = METHODS[rec.method]
        pixels = read_image(folder / "input.png").pixels
        upscaler = cls(device=self.device, **rec.settings)
        report = self._reporter(live, rec)
        has_field, psnr = False, None
        if getattr(cls, "fits_field", False):
            fitted, result = upscaler.fit_field(pixels, size, bit_depth=rec.bit_depth, progress=report)
            psnr = result.psnr
            fitted.save(folder / "field.safetensors", method=rec.method, settings=rec.settings)
            has_field = True
            depth = np.uint16 if rec.bit_depth == 16 else np.uint8  # quantized tile by tile: 1/4 the memory
            out = render_field(fitted, size, dtype=depth, footprint=upscaler.footprint(),
                               progress=self._render_reporter(live, report))
        else:
            out = upscaler.upscale(pixels, size, progress=report)
        write_image(folder / "result.png", np.ascontiguousarray(out), bit_depth=rec.bit_depth)
        if live.cancel.is_set():
            raise Cancelled()
        before = bicubic(device="cpu").upscale(pixels, size)
        write_image(folder / "bicubic.png", np.ascontiguousarray(before), bit_depth=8)
        (folder / "history.json").write_text(json.dumps(live.history))
        final = {"step": live.history[-1]["step"], "total": live.history[-1]["total"]} if live.history else {}
        return {"has_field": has_field, "psnr": psnr, **final}

    def _run_art(self, live: LiveJob, rec: JobRecord, folder: Path) -> dict:
        """An Art page poster (an event per tile) or animation (an event per frame): result.png
        or result.gif (server/art.py draws them); returns the record's final changes."""
        from coordsr.server.art import render_art_job

        start, last = time.monotonic(), {}

        def report(event: dict) -> None:
            if live.cancel.is_set():
                raise Cancelled()
            event = {"loss": None, "psnr": None, **event, "elapsed": time.monotonic() - start}
            done = event["step"] / max(event["total"], 1)
            event["eta"] = event["elapsed"] * (1 - done) / done if done > 0 else None
            last.update(step=event["step"], total=event["total"])
            live.publish("progress", event)

        render_art_job(rec, folder, report)
        if live.cancel.is_set():  # asked for after the last report: the result is not kept
            (folder / rec.result_file).unlink(missing_ok=True)
            raise Cancelled()
        return last

    def _reporter(self, live: LiveJob, rec: JobRecord):
        """The progress callback of one job: events, throttled previews, cancellation."""
        state = {"last_preview": None}

        def report(p: Progress) -> None:
            if live.cancel.is_set():
                raise Cancelled()
            now = time.monotonic()
            event = {"step": p.step, "total": p.total, "stage": p.stage, "loss": p.loss,
                     "psnr": p.psnr, "elapsed": p.elapsed, "eta": p.eta}
            due = state["last_preview"] is None or now - state["last_preview"] >= self.preview_interval
            if p.preview is not None and due:
                event["preview"] = data_url(p.preview())
                state["last_preview"] = time.monotonic()
                changes = {"step": p.step, "total": p.total, "psnr": p.psnr}
                if live.preview is None:
                    changes["first_preview_s"] = time.time() - rec.created
                try:
                    self.store.update(rec.id, **changes)
                except Exception as exc:  # progress in the record is a nicety: a full disk skips it
                    if storage_refused(exc) is None:
                        raise
                    log.warning("job %s: progress not stored (%s)", rec.id, storage_refused(exc))
            live.publish("progress", event)
            if live.keep.is_set() and p.stage == "fit":  # after the publish: the curve ends here
                raise StopEarly(p.step, p.psnr)  # fit_field returns the field as it is now

        return report

    def _render_reporter(self, live: LiveJob, report):
        """render()'s (done, total) pixels callback -> 'render' stage events, at most 4 a second."""
        start, state = time.monotonic(), {"last": 0.0}

        def on_tile(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - state["last"] >= 0.25:
                state["last"] = now
                report(Progress(step=done, total=total, stage="render", elapsed=now - start))

        return on_tile


def warm_up() -> None:
    """Pay torch's one-time costs before the first job (the first optimizer imports
    torch._dynamo: seconds), so the first upload shows its first preview as soon as later ones."""
    try:
        import torch

        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    except Exception:  # pragma: no cover - a failed warm-up only costs time later
        log.exception("warm-up failed")


def read_history(folder: Path) -> list[dict]:
    """The curve of a finished job (written when it ends)."""
    try:
        return json.loads((folder / "history.json").read_text())
    except (OSError, ValueError):
        return []


def read_last(folder: Path) -> dict | None:
    """The last progress report of an ended job (written when it ends), or None."""
    try:
        last = json.loads((folder / "last.json").read_text())
    except (OSError, ValueError):
        return None
    return last if isinstance(last, dict) else None


__all__ = ["FINAL", "JobManager", "LiveJob", "QueueFull", "Upload", "read_history", "read_last"]
