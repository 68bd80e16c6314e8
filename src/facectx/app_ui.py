"""The page of ``python -m facectx.app``: Gradio layout and event wiring only.

Every computation is a method of :class:`facectx.demo.Demo`; this module turns its results and
its :class:`~facectx.demo.AppError` messages into components. Importing it imports gradio.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from facectx.demo import (
    FACE_CHOICES,
    INPAINT_MASKS,
    MAX_SAMPLES,
    NO_INPAINT,
    AppError,
    Demo,
)

log = logging.getLogger("facectx.app")

TITLE = "facectx: face hallucination and identity inpainting"
INTRO = (
    "Upload a photo (or pick an example). Each face is aligned and masked to the convex hull of "
    "its 68 landmarks; the model hallucinates forehead, hair, neck, clothes and background "
    "around it. Everything runs on this machine."
)
#: system fonts only: the page fetches nothing from the network
FONT = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
FONT_MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")


def photo_input(**kwargs: Any) -> gr.Image:
    """An image upload that passes the file's path on unchanged (full resolution, EXIF kept),
    and turns a file Pillow cannot open into a sentence instead of a generic error.

    The instance's ``preprocess`` is wrapped rather than ``gr.Image`` subclassed: gradio writes
    a ``.pyi`` stub beside the module of every component subclass it sees defined."""
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    unwrapped = image.preprocess

    def preprocess(payload):
        try:
            return unwrapped(payload)
        except Exception as e:
            name = getattr(payload, "orig_name", None) or "the file"
            raise gr.Error(
                html.escape(f"Could not read {name} as an image ({type(e).__name__}).")
            ) from e

    image.preprocess = preprocess
    return image


def _status(text: str, error: bool = False) -> str:
    return f"**⚠ {html.escape(text)}**" if error else html.escape(text)


def _fail(e: Exception) -> str:
    """The sentence shown for a failed request: the AppError's, or a generic one (logged)."""
    if isinstance(e, AppError):
        return str(e)
    log.exception("request failed")
    return f"Something went wrong ({type(e).__name__}: {e}). The server's log has the details."


def build(demo: Demo, examples: Sequence[str | Path] = ()) -> gr.Blocks:
    """The page for ``demo``; ``examples`` are photos offered under the upload."""
    with gr.Blocks(
        title="facectx demo", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as page:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tab("Hallucinate", id="hallucinate"):
            _hallucinate_tab(demo, examples)
        with gr.Tab("Inpaint with a reference", id="inpaint"):
            _inpaint_tab(demo)
    return page


def _detector_radio(demo: Demo, **kwargs: Any) -> gr.Radio:
    """The detectors that can run here; the info line names any that cannot, and why."""
    missing = "; ".join(f"{n}: {why}" for n, why in demo.unavailable.items())
    return gr.Radio(
        list(demo.detectors),
        value=demo.detector,
        label="Face detector",
        info=f"Not offered here: {missing}." if missing else None,
        **kwargs,
    )


def _faces_gallery(label: str, elem_id: str, visible: bool = True) -> gr.Gallery:
    """A gallery of one (S, S) image per face, shown at about their own size."""
    return gr.Gallery(
        label=label,
        columns=2,
        fit_columns=False,
        height=200,
        object_fit="contain",
        allow_preview=True,
        visible=visible,
        elem_id=elem_id,
    )


def _hallucinate_tab(demo: Demo, examples: Sequence[str | Path]) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            photo = photo_input(
                label="Photo", sources=["upload", "clipboard"], height=320, elem_id="photo"
            )
            if examples:
                gr.Examples(
                    examples=[[str(p)] for p in examples],
                    inputs=[photo],
                    label="Examples (faces from LFW shipped with facectx)",
                )
            with gr.Row():
                detector = _detector_radio(demo, elem_id="detector")
                faces = gr.Radio(
                    list(FACE_CHOICES), value=demo.faces, label="Faces", elem_id="faces"
                )
            samples = gr.Slider(
                1,
                MAX_SAMPLES,
                value=1,
                step=1,
                label="Portraits per face",
                info="The exemplar model gives each face several contexts.",
                visible=demo.hallucinator.sampling,
                elem_id="samples",
            )
            with gr.Accordion("New background (optional)", open=False):
                background = photo_input(
                    label="Background image", sources=["upload"], height=200, elem_id="background"
                )
            run = gr.Button("Hallucinate", variant="primary", elem_id="run-hallucinate")
        with gr.Column(scale=3):
            status = gr.Markdown(elem_id="hallucinate-status")
            with gr.Row():
                masked = _faces_gallery("Aligned and masked (the model's input)", "faces-masked")
                portraits = _faces_gallery("With hallucinated context", "faces-hallucinated")
                backgrounds = _faces_gallery(
                    "On the new background", "faces-background", visible=False
                )
            candidates = gr.Gallery(
                label="Portraits per face (face, sample)",
                columns=MAX_SAMPLES,
                height=200,
                object_fit="contain",
                allow_preview=True,
                visible=False,
                elem_id="faces-samples",
            )
            pasted = gr.Image(
                label="Pasted back into the photo",
                interactive=False,
                format="png",
                visible=demo.hallucinator.pastes_back,
                elem_id="pasted",
            )
            download = gr.DownloadButton(
                "Download results (.zip)", visible=False, elem_id="download-hallucinated"
            )

    def on_run(
        photo_path,
        detector_name,
        faces_name,
        background_path,
        samples_count,
        progress=gr.Progress(),  # noqa: B008 (gradio's idiom: it passes a tracker per request)
    ):
        try:
            result = demo.hallucinate(
                photo_path,
                faces=faces_name,
                detector=detector_name,
                background=background_path,
                progress=lambda f, d: progress(f, desc=d),
                samples=int(samples_count or 1),
            )
            progress(0.95, desc="Saving the results")
            saved = demo.save_hallucinated(result)
        except Exception as e:
            message = _fail(e)
            gr.Warning(html.escape(message))
            return (
                _status(message, error=True),
                [],
                [],
                gr.update(value=[], visible=False),
                gr.update(value=[], visible=False),
                gr.update(value=None),
                gr.update(value=None, visible=False),
            )
        n = len(result.faces)
        text = demo.status(result)
        files = saved.images
        caption = [f"face {i}" for i in range(1, n + 1)]
        with_bg = [
            (str(files[f"face{i}_background"]), caption[i - 1])
            for i in range(1, n + 1)
            if f"face{i}_background" in files
        ]
        several = [
            (str(files[f"face{i}_sample{j}"]), f"face {i}, sample {j + 1}")
            for i, f in enumerate(result.faces, 1)
            for j in range(len(f.candidates))
        ]
        return (
            _status(text),
            [(str(files[f"face{i}_masked"]), caption[i - 1]) for i in range(1, n + 1)],
            [(str(files[f"face{i}_portrait"]), caption[i - 1]) for i in range(1, n + 1)],
            gr.update(value=with_bg, visible=bool(with_bg)),
            gr.update(value=several, visible=bool(several)),
            gr.update(
                value=str(files["pasted"]) if "pasted" in files else None,
                visible="pasted" in files,
            ),
            gr.update(value=str(saved.zip), visible=True),
        )

    run.click(
        on_run,
        [photo, detector, faces, background, samples],
        [status, masked, portraits, backgrounds, candidates, pasted, download],
        concurrency_id="models",
        api_name="hallucinate",
    )


def _inpaint_tab(demo: Demo) -> None:
    if demo.inpainter is None:
        gr.Markdown(html.escape(NO_INPAINT), elem_id="inpaint-unavailable")
        return
    with gr.Row():
        with gr.Column(scale=2):
            photo = photo_input(label="Photo", sources=["upload", "clipboard"], elem_id="ip-photo")
            reference = photo_input(
                label="Reference (the identity to fill in)",
                sources=["upload", "clipboard"],
                height=240,
                elem_id="ip-reference",
            )
            mask = gr.Radio(list(INPAINT_MASKS), value="facial", label="Hole", elem_id="ip-mask")
            editor = gr.ImageEditor(
                label="Paint the hole (mask: drawn)",
                type="numpy",
                sources=[],
                brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"),
                layers=False,
                transforms=(),
                visible=False,
                elem_id="ip-editor",
            )
            with gr.Row():
                detector = _detector_radio(demo)
                faces = gr.Radio(list(FACE_CHOICES), value="largest", label="Faces")
            run = gr.Button("Inpaint", variant="primary", elem_id="run-inpaint")
        with gr.Column(scale=3):
            status = gr.Markdown(elem_id="inpaint-status")
            with gr.Row():
                before = gr.Image(label="Input", interactive=False, format="png")
                after = gr.Image(
                    label="Result (full resolution)",
                    interactive=False,
                    format="png",
                    elem_id="ip-result",
                )
            panels = gr.Gallery(
                label="Per face: masked | content | reference | swapped | blended",
                columns=1,
                height=220,
                object_fit="contain",
                elem_id="ip-panels",
            )
            download = gr.DownloadButton(
                "Download results (.zip)", visible=False, elem_id="download-inpainted"
            )

    # the editor shows the photo when the hole is to be drawn
    mask.change(lambda m: gr.update(visible=m == "drawn"), mask, editor)
    photo.change(
        lambda p: {"background": p, "layers": [], "composite": p} if p else None, photo, editor
    )

    def on_run(
        photo_path,
        ref_path,
        mask_name,
        drawn,
        detector_name,
        faces_name,
        progress=gr.Progress(),  # noqa: B008 (gradio's idiom: it passes a tracker per request)
    ):
        try:
            result = demo.inpaint(
                photo_path,
                ref_path,
                mask=mask_name,
                drawn=drawn,
                detector=detector_name,
                faces=faces_name,
                progress=lambda f, d: progress(f, desc=d),
            )
            progress(0.95, desc="Saving the results")
            saved = demo.save_inpainted(result)
        except Exception as e:
            message = _fail(e)
            gr.Warning(html.escape(message))
            return _status(message, error=True), None, None, [], gr.update(visible=False)
        h, w = result.image.shape[:2]
        text = f"{len(result.panels)} face(s) inpainted; {int(result.hole.sum())} of {w}×{h} pixels changed."
        files = saved.images
        panel_files = [str(files[k]) for k in sorted(files) if k.endswith("_panel")]
        return (
            _status(text),
            photo_path,
            str(files["inpainted"]),
            # opened on the first panel: a grid's square thumbnail would centre the 5:1 strip
            # below the gallery's visible height
            gr.update(value=panel_files, selected_index=0),
            gr.update(value=str(saved.zip), visible=True),
        )

    run.click(
        on_run,
        [photo, reference, mask, editor, detector, faces],
        [status, before, after, panels, download],
        concurrency_id="models",
        api_name="inpaint",
    )


def launch(
    page: gr.Blocks,
    demo: Demo,
    host: str,
    port: int,
    max_file_size: str = "50mb",
    block: bool = True,
    allowed: Sequence[str | Path] = (),
) -> None:
    """Serve ``page`` on ``host:port`` with nothing fetched from or sent to the network.

    gradio is told to be quiet (its console lines offer a public share link, which this app
    never makes); the address is logged instead. With ``block``, returns once the server stops
    (Ctrl-C, or SystemExit from the SIGTERM handler of :func:`facectx.app.serve`)."""
    import time

    theme = gr.themes.Default(font=list(FONT), font_mono=list(FONT_MONO))
    page.queue(default_concurrency_limit=1)
    page.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
        theme=theme,
        footer_links=["settings"],
        run_history=False,
        enable_monitoring=False,
        mcp_server=False,
        pwa=False,
        ssr_mode=False,
        max_file_size=max_file_size,
        allowed_paths=[str(demo.work_dir), *(str(p) for p in allowed)],
    )
    log.info("the demo page is at %s (Ctrl-C stops it)", page.local_url)
    if not block:
        return
    try:
        while page.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        page.close(verbose=False)
