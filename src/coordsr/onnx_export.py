"""ONNX export of the trained models (issue 37): graphs that onnxruntime runs without torch.

Two kinds of file, from the same torch modules:

* **standalone** (``coordsr export MODEL -o model.onnx``): one self-contained graph, float32
  weights inside, for other tools. An arbitrary-scale model (``pretrained``, ``drawing``, any
  ``coordsr.liif`` weights file) is LIIF's own call, the whole image at once::

      image  (1, C, h, w)  float32 in [0, 1]     the LR image (C: 3, the drawing model 4)
      coords (1, N, 2)     float32               (x, y) of each query, field coordinates:
                                                 the image covers [-1, 1]^2 (DESIGN.md 1)
      cell   (1, 2)        float32               (width, height) of one output pixel, same units
        -> rgb (1, N, C)   float32               unclipped

  h, w and N are dynamic. The denoiser is ``noisy (1, 3, H, W), sigma (1,) -> denoised (1, 3, H, W)``
  with H and W even (pad odd sides by repeating the last row or column, then crop).

* **runtime** (``coordsr export MODEL --runtime``): what ``coordsr.onnx_backend`` runs, written
  beside the weights file (``NAME.encoder.onnx`` and ``NAME.query.onnx`` for NAME.safetensors,
  ``NAME.onnx`` for the denoiser). The arbitrary-scale model is split into an encoder graph, run
  once per output tile, and a query graph, run once per chunk of queries, as
  ``coordsr.liif.model.upscale_tiles`` does: a single graph would encode the image again for
  every chunk. The graphs hold no weights of their own: each initializer is ONNX external
  data pointing at the tensor's bytes inside the safetensors file (safetensors stores raw
  little-endian tensors at offsets its header gives; float16 ones are cast to float32 in the
  graph, as ``load_weights`` does), so the package ships each model's weights once and a graph
  pair costs a few tens of KB. The SHA-256 of the weights file is in the graph's metadata: a
  graph whose weights file changed is stale, and the backend refuses it.

Needs torch and the ``onnx`` package (the ``dev`` and ``export`` extras); uses torch's
TorchScript-based exporter (``dynamo=False``), which needs nothing more.
"""

from __future__ import annotations

import hashlib
import json
import struct
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from coordsr.errors import CoordsrError

OPSET = 17
"""ONNX opset of the exported graphs (GridSample's bicubic mode needs 16)."""

SHA_KEY = "coordsr.weights_sha256"
"""Metadata key of a runtime graph: the SHA-256 of the weights file its external data points into."""


# --------------------------------------------------------------------- export-friendly modules

class EncoderGraph(nn.Module):
    """``image (1, C, h, w) -> hidden (1, hidden, h, w)``: ``LIIF.encode``'s feature map."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model.proj(self.model.encoder(image - 0.5))


class QueryGraph(nn.Module):
    """``LIIF.query`` on features of the LR pixels inside ``box``, in ops ONNX has:
    ``hidden (1, K, h, w), image (1, C, h, w), coords (1, N, 2), cell (1, 2), box (4,) -> (1, N, C)``.
    The same arithmetic as ``query`` (its no-grad path fuses the same sums)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.register_buffer("offs", torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                             persistent=False)

    def forward(self, hidden, image, coords, cell, box):
        m, cfg = self.model, self.model.cfg
        shape = torch._shape_as_tensor(hidden)  # (4,) int64: traced as a Shape node, so h, w stay dynamic
        h, w = shape[2], shape[3]
        size = torch.stack([w, h]).to(coords.dtype)  # (2,) as (x, y)
        to_px = size / (box[2:] - box[:2])
        p = (coords - box[:2]) * to_px  # (1, N, 2) in LR pixels; centre j at j + 0.5
        cellp = (cell * to_px)[:, None, None, :]  # (1, 1, 1, 2)

        lo = torch.floor(p - 0.5)
        nb = lo[:, None] + self.offs[None, :, None]  # (1, 4, N, 2)
        nb = torch.minimum(torch.maximum(nb, torch.zeros_like(size)), size - 1)
        rel = p[:, None] - (nb + 0.5)  # (1, 4, N, 2), within [-1, 1]
        idx = (nb[..., 1] * size[0] + nb[..., 0]).long()  # (1, 4, N)

        width = hidden.shape[1]
        table = hidden.permute(0, 2, 3, 1).reshape(-1, width)  # (h * w, K)
        g = table.index_select(0, idx.reshape(-1))  # (4N, K)
        inp = torch.cat([rel, cellp.expand_as(rel)], dim=-1).reshape(-1, 4)  # (4N, 4)
        if cfg.decoder == "lte":
            z = m.first(self._texture(g, inp))
        else:
            z = g + inp @ m.coord.weight.t()
        z = F.relu(z)
        linears = [lin for lin in m.mlp if isinstance(lin, nn.Linear)]
        for lin in linears[:-1]:
            z = F.relu(lin(z))
        z = z.reshape(1, 4, -1, cfg.hidden)  # (1, 4, N, hidden)

        area = (rel[..., 0] * rel[..., 1]).abs() + 1e-9  # (1, 4, N)
        weight = area[:, [3, 2, 1, 0]] / area.sum(1, keepdim=True)  # the opposite neighbour's area
        mixed = (z * weight[..., None]).sum(1)  # (1, N, hidden): the colour layer is affine
        out = linears[-1](mixed)  # (1, N, C)

        grid = (p / size * 2 - 1)[:, None]  # (1, 1, N, 2) in the crop's own [-1, 1]
        base = F.grid_sample(image, grid, mode="bicubic", padding_mode="border", align_corners=False)
        return out + base[:, :, 0].transpose(1, 2)

    def _texture(self, g, inp):
        """``LIIF._texture`` (LTE's local basis) without its autocast guard (float32 throughout)."""
        import math

        hd = self.model.cfg.hidden
        h2 = hd // 2
        arg = inp[:, 2:] @ self.model.phase.weight.t() + g[:, hd:hd + h2] * inp[:, :1] + g[:, hd + h2:] * inp[:, 1:2]
        arg = arg * math.pi
        return g[:, :hd] * torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


class FullGraph(nn.Module):
    """The standalone arbitrary-scale graph: ``image, coords, cell -> rgb`` over the whole image."""

    def __init__(self, model):
        super().__init__()
        self.encode = EncoderGraph(model)
        self.query = QueryGraph(model)
        self.register_buffer("box", torch.tensor([-1.0, -1.0, 1.0, 1.0]), persistent=False)

    def forward(self, image, coords, cell):
        return self.query(self.encode(image), image, coords, cell, self.box)


class DenoiserGraph(nn.Module):
    """``noisy (1, C, H, W), sigma (1,) in 8-bit levels -> denoised``, H and W even (``DenoiseNet``
    pads odd sides itself; a graph with a data-dependent pad would bake in one parity)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, noisy, sigma):
        return noisy - self.model.noise(noisy, sigma)


# --------------------------------------------------------------------- which model

def resolve_model(name: str) -> tuple[str, Path]:
    """('liif' or 'denoiser', weights file) for ``pretrained``, ``drawing``, ``trained`` (the
    denoiser) or the path of a safetensors file of either format; CoordsrError otherwise."""
    from coordsr.methods.base import shipped_weights_file

    shipped = {"pretrained": ("liif", "pretrained.safetensors"), "blind": ("liif", "blind.safetensors"),
               "drawing": ("liif", "drawing.safetensors"), "trained": ("denoiser", "denoiser.safetensors")}
    if name in shipped:
        kind, file = shipped[name]
        return kind, Path(shipped_weights_file(file))
    path = Path(name)
    if not path.is_file():
        raise CoordsrError(f"{name}: not a model name (pretrained, blind, drawing, trained) nor a weights file")
    fmt = _safetensors_header(path).get("__metadata__", {}).get("format")
    if fmt == "coordsr.liif":
        return "liif", path
    if fmt == "coordsr.denoiser":
        return "denoiser", path
    if fmt == "coordsr-field":
        raise CoordsrError(f"{path}: a fitted field; only trained models export to ONNX for now "
                           "(pretrained, blind, drawing, trained or a weights file of coordsr.liif)")
    raise CoordsrError(f"{path}: format {fmt!r}; expected a coordsr.liif or coordsr.denoiser weights file")


def _load(kind: str, path: Path):
    if kind == "liif":
        from coordsr.liif.model import load_weights

        return load_weights(path, device="cpu")
    from coordsr.denoise.net import load_denoiser

    return load_denoiser(path, device="cpu")


def _export(module: nn.Module, args: tuple, path: Path, names: list[str], outputs: list[str],
            dynamic: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(module.eval(), args, str(path), input_names=names, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
                          do_constant_folding=False)


def _liif_examples(model):
    c = model.cfg.in_channels
    image = torch.rand(1, c, 7, 9)
    coords = torch.rand(1, 10, 2) * 2 - 1
    cell = torch.tensor([[0.1, 0.1]])
    return image, coords, cell


LIIF_AXES = {"image": {2: "h", 3: "w"}, "coords": {1: "n"}, "rgb": {1: "n"}}


def export_standalone(name: str, out: str | Path) -> Path:
    """Write the standalone graph of model ``name`` (see the module docstring) to ``out``."""
    kind, weights = resolve_model(name)
    model = _load(kind, weights)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        if kind == "liif":
            _export(FullGraph(model), _liif_examples(model), tmp, ["image", "coords", "cell"], ["rgb"], LIIF_AXES)
        else:
            _export(DenoiserGraph(model), (torch.rand(1, model.cfg.colours, 8, 10), torch.tensor([25.0])), tmp,
                    ["noisy", "sigma"], ["denoised"], {"noisy": {2: "h", 3: "w"}, "denoised": {2: "h", 3: "w"}})
        _set_metadata(tmp, {"coordsr.model": weights.name, "coordsr.kind": kind, **_doc(kind)})
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def runtime_paths(weights: str | Path, kind: str = "liif") -> dict[str, Path]:
    """Where the runtime graphs of ``weights`` (``dir/NAME.safetensors``) live: beside it."""
    weights = Path(weights)
    stem = weights.name.removesuffix(".safetensors")
    if kind == "liif":
        return {"encoder": weights.with_name(f"{stem}.encoder.onnx"), "query": weights.with_name(f"{stem}.query.onnx")}
    return {"denoiser": weights.with_name(f"{stem}.onnx")}


def export_runtime(name: str) -> list[Path]:
    """Write the runtime graphs of model ``name`` beside its weights file (the module docstring
    says what they hold); returns their paths."""
    kind, weights = resolve_model(name)
    model = _load(kind, weights)
    paths = runtime_paths(weights, kind)
    if kind == "liif":
        c, k = model.cfg.in_channels, model.proj.out_channels
        jobs = [(EncoderGraph(model), (torch.rand(1, c, 7, 9),), paths["encoder"], ["image"], ["hidden"],
                 {"image": {2: "h", 3: "w"}, "hidden": {2: "h", 3: "w"}}),
                (QueryGraph(model), (torch.rand(1, k, 7, 9), torch.rand(1, c, 7, 9), torch.rand(1, 10, 2) * 2 - 1,
                                     torch.tensor([[0.1, 0.1]]), torch.tensor([-1.0, -1.0, 1.0, 1.0])),
                 paths["query"], ["hidden", "image", "coords", "cell", "box"], ["rgb"],
                 {"hidden": {2: "h", 3: "w"}, "image": {2: "h", 3: "w"}, "coords": {1: "n"}, "rgb": {1: "n"}})]
    else:
        jobs = [(DenoiserGraph(model), (torch.rand(1, model.cfg.colours, 8, 10), torch.tensor([25.0])),
                 paths["denoiser"], ["noisy", "sigma"], ["denoised"],
                 {"noisy": {2: "h", 3: "w"}, "denoised": {2: "h", 3: "w"}})]
    sha = file_sha256(weights)
    for module, args, path, names, outputs, axes in jobs:
        tmp = path.with_name(path.name + ".tmp")
        try:
            _export(module, args, tmp, names, outputs, axes)
            _point_at_weights(tmp, weights, dict(module.state_dict()))
            _set_metadata(tmp, {SHA_KEY: sha, "coordsr.model": weights.name, "coordsr.kind": kind})
            tmp.chmod(0o644)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return list(paths.values())


# --------------------------------------------------------------------- external data in safetensors

def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _safetensors_header(path: Path) -> dict:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > 100_000_000:
            raise CoordsrError(f"{path}: not a safetensors file")
        return json.loads(f.read(n))


def _point_at_weights(path: Path, weights: Path, state: dict[str, torch.Tensor]) -> None:
    """Replace each initializer of the graph at ``path`` that is a tensor of ``state`` by external
    data inside ``weights`` (the same bytes), cast to float32 where the file holds float16."""
    import onnx
    from onnx import TensorProto, helper

    header = _safetensors_header(weights)
    start = 8 + struct.unpack("<Q", weights.read_bytes()[:8])[0]
    types = {"F16": TensorProto.FLOAT16, "F32": TensorProto.FLOAT}
    g = onnx.load(str(path))
    casts = []
    for init in g.graph.initializer:
        key = _state_key(init.name, state)
        info = header.get(key)
        if info is None or info["dtype"] not in types:
            continue
        if list(info["shape"]) != list(init.dims):
            raise CoordsrError(f"{weights}: tensor {key} has shape {info['shape']}, the graph {list(init.dims)}")
        b0, b1 = info["data_offsets"]
        name = init.name
        if info["dtype"] == "F16":
            init.name = f"{name}::float16"
            casts.append(helper.make_node("Cast", [init.name], [name], to=TensorProto.FLOAT))
        init.data_type = types[info["dtype"]]
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = TensorProto.EXTERNAL
        del init.external_data[:]
        for k, v in (("location", weights.name), ("offset", str(start + b0)), ("length", str(b1 - b0))):
            init.external_data.add(key=k, value=v)
    missing = [i.name for i in g.graph.initializer if i.data_location != TensorProto.EXTERNAL and i.dims
               and _numel(i.dims) > 16]
    if missing:
        raise CoordsrError(f"{path}: initializers not found in {weights.name}: {missing[:3]}")
    nodes = list(g.graph.node)
    del g.graph.node[:]
    g.graph.node.extend(casts + nodes)
    onnx.save(g, str(path))


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _state_key(init_name: str, state: dict) -> str:
    """The weights file's key of an initializer named after the wrapper's parameter
    (``model.encoder.head.weight`` -> ``encoder.head.weight``)."""
    for prefix in ("model.", "encode.model.", "query.model."):
        if init_name.startswith(prefix):
            return init_name[len(prefix):]
    return init_name


def _set_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    g = onnx.load(str(path), load_external_data=False)
    for k, v in meta.items():
        entry = g.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(g, str(path))


def _doc(kind: str) -> dict[str, str]:
    if kind == "liif":
        return {"coordsr.signature": "image (1,C,h,w) in [0,1], coords (1,N,2) (x,y) in field units "
                                     "(the image covers [-1,1]^2), cell (1,2) one output pixel's (w,h) "
                                     "-> rgb (1,N,C), unclipped; docs/onnx.md"}
    return {"coordsr.signature": "noisy (1,3,H,W) in [0,1], H and W even, sigma (1,) in 8-bit levels "
                                 "-> denoised (1,3,H,W); docs/onnx.md"}
