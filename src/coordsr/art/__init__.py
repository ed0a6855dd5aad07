"""Art: random CPPNs and fitted fields as pictures and animations at any resolution.

    generator.py  the CPPN and its settings (ArtConfig)
    palettes.py   gradients and HSV
    symmetry.py   folds of the plane (mirror, radial, kaleido, tile)
    scene.py      view (zoom, centre, rotation), coordinate warps, weight jitter, morph blends
    animate.py    stills and frame sequences drawn with render.py's tiles
    writers.py    PNG with the settings, streaming GIF / MP4 / PNG frames
    files.py      art field files and PNG text chunks; load any source
    make.py       make_art: one call per `coordsr art` run
"""

from coordsr.art.animate import ANIMATIONS, Animation, draw, write_animation
from coordsr.art.files import load_source, save_art_field
from coordsr.art.generator import ACTIVATIONS, CPPN, MODES, ArtConfig
from coordsr.art.make import Made, make_art
from coordsr.art.palettes import COLOURINGS, PALETTES
from coordsr.art.scene import Scene, View
from coordsr.art.symmetry import SYMMETRIES

__all__ = ["ACTIVATIONS", "ANIMATIONS", "Animation", "ArtConfig", "COLOURINGS", "CPPN", "MODES", "Made",
           "PALETTES", "SYMMETRIES", "Scene", "View", "draw", "load_source", "make_art", "save_art_field",
           "write_animation"]
