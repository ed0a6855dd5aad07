#!/bin/sh
# Draws every picture of docs/ART.md with the commands printed under each (run from the repo root:
# sh docs/art/make_gallery.sh). The fitted field comes from scikit-image's bundled cat photo.
set -eu
A="coordsr art --force -q"
O=docs/art
$A -o $O/seed7.png --seed 7 --size 256x256
$A -o $O/seed7-sunset-mirror.png --seed 7 --palette sunset --symmetry mirror-x --size 256x256
$A -o $O/mix-hsv-kaleido.png --seed 3 --activation mix --palette hsv --symmetry kaleido --size 256x256
$A -o $O/radial-fire.png --seed 10 --symmetry radial --fold 5 --palette fire --size 256x256
$A -o $O/tanh-sin-ocean.png --seed 21 --activation tanh,sin --palette ocean --size 256x256
$A -o $O/grey.png --seed 9 --mode grey --size 256x256
$A -o $O/tile-neon.png --seed 12 --activation gauss --symmetry tile --fold 3 --palette neon --size 256x256
$A -o $O/calm-ice.png --seed 7 --weight-scale 0.5 --palette ice --size 256x256
$A -o $O/deep-earth.png --seed 4 --depth 16 --width 16 --palette earth --size 256x256
$A -o $O/seed7-wide.png --seed 7 --zoom 0.25 --size 256x256
python -c "from PIL import Image; import skimage.data as d; Image.fromarray(d.chelsea()).resize((150, 100), Image.LANCZOS).save('$O/cat.png')"
coordsr fit $O/cat.png -o /tmp/cat.field --method siren --steps 300 --seed 0 --force -q
$A -o $O/cat-beyond.png --from /tmp/cat.field --zoom 0.3 --size 384x256
$A -o $O/cat-warp.png --from /tmp/cat.field --warp 0.08 --warp-frequency 4 --jitter 0.03 --seed 1 --size 384x256
$A -o $O/walk.gif --seed 7 --palette sunset --symmetry mirror-x --animate latent --frames 36 --fps 12 --size 128x128
$A -o $O/cat-zoom-out.gif --from /tmp/cat.field --animate zoom --zoom-to 0.25 --frames 30 --fps 12 --size 192x128
du -ch $O/*.png $O/*.gif | tail -1
