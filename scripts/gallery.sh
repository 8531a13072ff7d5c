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
# Sections: shipped (MLP, CNN), resnet (the shipped graph model), big (issue 9: the PyTorch
# MNIST example and ResNet-18 at 64x64 with random weights, and a ResNet-18 animation); all by
# default, e.g. `bash scripts/gallery.sh big` for one.
SECTIONS="$*"
want_section() { [ -z "$SECTIONS" ] || [[ " $SECTIONS " == *" $1 "* ]]; }
if want_section shipped; then
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
fi
# The graph model (skip connections): 3D and flat.
if want_section resnet; then
render resnet_3d_dark --model resnet --input sample:7 --layout 3d --theme dark --camera iso
render resnet_flat_dark --model resnet --input sample:7 --layout flat --theme dark
fi
# Networks 100x larger, drawn whole (maps, bundles): random weights, live inputs.
if want_section big; then
    .venv/bin/python scripts/big_models.py ptex r18_64
    render ptex_3d_dark --model out/big/ptex.onnx --input sample:7 --layout 3d --camera iso
    render ptex_flat_dark --model out/big/ptex.onnx --input sample:7 --layout flat
    picture=docs/viewport/dark_render.jpg
    render r18_64_3d_dark --model out/big/r18_64.onnx --input $picture --layout 3d --camera iso
    render r18_64_flat_dark --model out/big/r18_64.onnx --input $picture --layout flat
    # A signal travelling through the ResNet: two pictures, the change sweeping input to output.
    .venv/bin/python -m nnviz_blender animate --model out/big/r18_64.onnx \
        --inputs docs/viewport/dark_render.jpg,docs/viewport/light_render.jpg --wave \
        --hold 0.5 --transition 2 --fps 12 --view iso --resolution 640x360 --samples 16 \
        --out docs/animation_r18_64_wave.mp4
fi
