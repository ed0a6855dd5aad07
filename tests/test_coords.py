import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coordsr.coords import (CONVENTIONS, WHOLE_GRID, aspect_scale, axis_centers, cell_size, misalignment,
                            pixel_centers, seed_to_cell, to_cell)
from coordsr.render import render


def test_pixel_centres_follow_the_cell_convention():
    c = pixel_centers(2, 4)
    assert c.shape == (2, 4, 2)
    assert torch.allclose(c[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(c[:, 0, 1], torch.tensor([-0.5, 0.5]))
    assert torch.allclose(cell_size(2, 4), torch.tensor([0.5, 1.0]))


def test_grid_sample_with_align_corners_false_reads_back_each_pixel():
    img = torch.rand(1, 3, 5, 7)
    grid = pixel_centers(5, 7)[None]
    out = F.grid_sample(img, grid, mode="bilinear", align_corners=False)
    assert torch.allclose(out, img, atol=1e-6)


def test_interpolate_agrees_with_the_convention():
    # F.interpolate(align_corners=False) reads the input at the centres of the output cells.
    img = torch.rand(1, 1, 4, 6)
    up = F.interpolate(img, size=(16, 24), mode="bilinear", align_corners=False)
    via_grid = F.grid_sample(img, pixel_centers(16, 24)[None], mode="bilinear", align_corners=False,
                             padding_mode="border")
    assert torch.allclose(up, via_grid, atol=1e-6)


def test_same_picture_at_every_resolution():
    # The centre of the 64x64 grid's pixel block (k, k)..(k+15, k+15) is the 4x4 grid's pixel centre.
    coarse = pixel_centers(4, 4)
    fine = pixel_centers(64, 64).reshape(4, 16, 4, 16, 2).mean(dim=(1, 3))
    assert torch.allclose(coarse, fine, atol=1e-6)


def test_box_selects_a_region():
    full = pixel_centers(8, 8)
    quarter = pixel_centers(4, 4, box=(-1.0, -1.0, 0.0, 0.0))
    assert torch.allclose(full[:4, :4], quarter)


def test_seed_convention_is_index_over_n_minus_one():
    c = pixel_centers(3, 5, convention="seed")
    assert torch.allclose(c[0, :, 0], torch.tensor([0, 0.25, 0.5, 0.75, 1.0]))
    assert torch.allclose(seed_to_cell(c, 3, 5), pixel_centers(3, 5), atol=1e-6)


def test_seed_convention_misaligns_by_three_eighths_of_an_input_pixel_at_4x():
    """A ramp image f(x) = x, read back perfectly by a field in each convention, drawn at 4x.

    The cell convention draws the true ramp; the seed convention pins the first and last output
    pixels to the first and last input pixel centres, so the picture is stretched: 1.5 output
    pixels (3/8 of an input pixel) off at the borders, exact only in the middle.
    """
    w = 16
    truth = lambda coords: coords[..., :1]  # noqa: E731  the continuous image: brightness = x
    lr_centres = axis_centers(w)
    seed_field = lambda u: lr_centres[0] + u[..., :1] * (lr_centres[-1] - lr_centres[0])  # noqa: E731
    cell = render(truth, (1, 4 * w), 1)[0, :, 0]
    seed = render(seed_field, (1, 4 * w), 1, convention="seed")[0, :, 0]
    want = axis_centers(4 * w).numpy()
    assert np.abs(cell - np.clip(want, 0, 1)).max() < 1e-6  # render clips to [0, 1]
    seed_unclipped = lr_centres[0].item() + np.arange(4 * w) / (4 * w - 1) * (lr_centres[-1] - lr_centres[0]).item()
    shift_px = np.abs(seed_unclipped - want) / (2 / (4 * w))
    assert abs(shift_px.max() - 1.5) < 1e-3
    assert shift_px.min() < 0.05
    assert np.abs(seed - np.clip(seed_unclipped, 0, 1)).max() < 1e-6


def test_aspect_scale_makes_pixels_square():
    s = aspect_scale(200, 300)
    size = cell_size(200, 300) * s
    assert torch.allclose(size[0], size[1])


def test_the_seeds_normalisations_span_their_ranges():
    assert torch.allclose(axis_centers(5, convention="centred"), torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    std = axis_centers(7, convention="standard").double()
    assert abs(std.mean().item()) < 1e-7 and abs(std.var(unbiased=False).item() - 1) < 1e-6
    for convention in WHOLE_GRID:
        assert axis_centers(1, convention=convention).tolist() == [0.0]


@pytest.mark.parametrize("convention", WHOLE_GRID)
def test_to_cell_maps_each_pixel_to_its_cell_centre(convention):
    c = pixel_centers(3, 5, convention=convention)
    assert torch.allclose(to_cell(c, 3, 5, convention), pixel_centers(3, 5), atol=1e-6)


def test_misalignment_at_4x_is_zero_for_cells_three_eighths_of_an_input_pixel_for_corners():
    assert misalignment(16, 64, "cell").abs().max() == 0
    for convention in ("seed", "centred"):
        shift = misalignment(16, 64, convention).abs()
        assert abs(shift.max().item() - 1.5) < 1e-9, convention  # the end pixels: 1.5 output pixels
        assert shift.min().item() < 0.05  # exact only in the middle
    # Standardising each grid on its own spreads the larger grid further, almost as cells do:
    # (N-1)/sqrt(N^2-1) against (n-1)/sqrt(n^2-1) is 1 + 1/n - 1/N to first order, as for cells.
    standard = misalignment(16, 64, "standard").abs()
    assert 0.01 < standard.max().item() < 0.1
    assert torch.allclose(misalignment(16, 64, "seed"), misalignment(16, 64, "centred"))
    assert set(CONVENTIONS) == {"cell", *WHOLE_GRID}
