"""``scriptrl render``: one episode of a policy as an animated GIF, from the environment's rgb_array frames.

The environment and its renderer stay in this process; the policy runs in the sandbox
worker (or, with ``unsafe_in_process``, a trusted policy runs here), through the same
episode loop as ``explain``. Frames are reduced to a shared 8-bit palette as they
arrive, so a 500-step episode costs a fraction of its raw RGB size in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from scriptrl.envs import ResolvedEnv, resolve_env
from scriptrl.errors import UserError
from scriptrl.program import Program


def render_episode(
    program: Program | str,
    env: ResolvedEnv | str,
    output: str | Path,
    *,
    seed: int = 0,
    every: int = 1,
    scale: float = 1.0,
    fps: float | None = None,
    unsafe_in_process: bool = False,
) -> dict[str, Any]:
    """Run one episode with ``seed`` and write every ``every``-th frame to ``output`` (a .gif)."""
    from scriptrl.glassbox.trace import run_episodes

    prog = program if isinstance(program, Program) else Program(source=program)
    renv = resolve_env(env) if isinstance(env, str) else env
    out = Path(output).expanduser()
    if out.suffix.lower() != ".gif":
        raise UserError(f"-o {out}: only .gif output is supported (name the file episode.gif)")
    if every < 1 or not (0.05 <= scale <= 4.0):
        raise UserError("--every must be at least 1 and --scale between 0.05 and 4")
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        # rgb_array needs no window; without this SDL complains on stderr about a missing display.
        # "offscreen", not "dummy": highway-env turns its viewer off (black frames) under "dummy".
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    grabber = _FrameGrabber(renv.label(), every, scale)
    try:
        ends, isolation = run_episodes(
            prog,
            renv,
            [seed],
            unsafe=unsafe_in_process,
            make_kwargs={"render_mode": "rgb_array"},
            on_reset=lambda i, e: grabber.grab(e),
            on_step=lambda s, e: grabber.grab(e),
        )
    except UserError:
        raise
    except Exception as e:  # a renderer that needs a display or a missing package
        raise UserError(f"cannot render {renv.label()}: {type(e).__name__}: {e}") from None
    frames = grabber.frames
    if not frames:
        raise UserError(f"{renv.label()} produced no frames")
    duration = _frame_ms(renv, fps, every)
    _write_gif(out, frames, duration)
    ep = ends[0]
    return {
        "path": str(out),
        "frames": len(frames),
        "return": ep.ret,
        "length": ep.length,
        "end": ep.end,
        "reason": ep.reason,
        "frame_ms": duration,
        "isolation": isolation,
    }


class _FrameGrabber:
    """Every ``every``-th frame, scaled and reduced to the first frame's 8-bit palette as it arrives."""

    def __init__(self, label: str, every: int, scale: float) -> None:
        self.label, self.every, self.scale = label, every, scale
        self.frames: list[Any] = []
        self.palette: Any = None
        self.count = 0

    def grab(self, env_obj: Any) -> None:
        from PIL import Image

        self.count += 1
        if (self.count - 1) % self.every:
            return
        rgb = env_obj.render()
        if rgb is None:
            raise UserError(f"{self.label} returned no frame: it cannot render as rgb_array")
        img = Image.fromarray(np.asarray(rgb, dtype=np.uint8)[..., :3])
        if self.scale != 1.0:
            size = (max(1, round(img.width * self.scale)), max(1, round(img.height * self.scale)))
            img = img.resize(size, Image.Resampling.BILINEAR)
        if self.palette is None:
            self.palette = img.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
        self.frames.append(img.quantize(palette=self.palette, dither=Image.Dither.NONE))


def _frame_ms(renv: ResolvedEnv, fps: float | None, every: int) -> int:
    """Milliseconds per GIF frame: the environment's render_fps unless given, times ``every``."""
    if fps is None:
        probe = renv.make()
        fps = float(probe.metadata.get("render_fps") or 30)
        probe.close()
    return max(20, round(1000.0 * every / fps / 10) * 10)  # GIF delays are in 1/100 s


def _write_gif(out: Path, frames: list[Any], duration: int) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        frames[0].save(
            out, save_all=True, append_images=frames[1:], duration=duration, loop=0, optimize=False
        )
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e} (choose another -o path)") from None
