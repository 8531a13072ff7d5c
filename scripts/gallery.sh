#!/usr/bin/env bash
# Render the README gallery with the render command (1920x1080, 64 samples, Cycles on the CPU),
# then shrink copies for docs/gallery/ (with Blender's own image scaling and JPEG writer, so no
# other tool is needed). Full-size renders stay in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv .venv requirements-test.txt
mkdir -p out/gallery docs/gallery
render() {  # name, then render options
    local name=$1
    shift
    .venv/bin/python -m nnviz_blender render --resolution 1920x1080 --samples 64 \
        --out "out/gallery/$name.png" "$@"
    .venv/bin/python -c 'import sys, bpy
image = bpy.data.images.load(sys.argv[1])
image.scale(960, 540)
image.file_format = "JPEG"
image.save(filepath=sys.argv[2], quality=88)' "out/gallery/$name.png" "docs/gallery/$name.jpg"
}
for model in cnn mlp; do
    for layout in 3d flat; do
        for theme in dark light; do
            render "${model}_${layout}_${theme}" --model $model --input sample:7 \
                --layout $layout --theme $theme
        done
    done
done
render cnn_3d_dark_iso --model cnn --input sample:2 --layout 3d --theme dark --camera iso
render mlp_3d_dark_iso --model mlp --input sample:3 --layout 3d --theme dark --camera iso
# The graph model (skip connections): 3D and flat.
render resnet_3d_dark --model resnet --input sample:7 --layout 3d --theme dark --camera iso
render resnet_flat_dark --model resnet --input sample:7 --layout flat --theme dark
