#!/usr/bin/env bash
# Fetch the face test images (known identities and negatives) into a cache directory, once.
#   bins/face-test-images.sh            # prints the directory
# From registry packages, never committed:
# - PyPI sdist face_recognition==1.3.0 (MIT): obama.jpg, obama2.jpg, obama3.jpg (one person),
#   biden.jpg, two partial-face crops, 32bit.png (an RGBA copy of obama2). US government photos.
# - PyPI wheel scikit-image==0.25.2: astronaut.png (public domain), camera.png (CC0),
#   chelsea.png (a cat) and coffee.png (no face).
# The directory is PV_FACE_IMAGES, default ~/.cache/pentavision/face-test-images.
set -euo pipefail
dir="${PV_FACE_IMAGES:-$HOME/.cache/pentavision/face-test-images}"
want=(obama.jpg obama2.jpg obama3.jpg biden.jpg obama_partial_face.jpg obama_partial_face2.jpg
  32bit.png astronaut.png camera.png chelsea.png coffee.png)
have=1
for f in "${want[@]}"; do [ -s "$dir/$f" ] || have=0; done
if [ "$have" = 0 ]; then
  mkdir -p "$dir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    face_recognition==1.3.0 -d "$tmp" >&2
  tar xzf "$tmp"/face_recognition-1.3.0.tar.gz -C "$tmp" face_recognition-1.3.0/tests/test_images
  cp "$tmp"/face_recognition-1.3.0/tests/test_images/* "$dir/"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
    --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
    scikit-image==0.25.2 -d "$tmp" >&2
  python3 - "$tmp" "$dir" <<'PY'
import glob, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
whl = glob.glob(f"{tmp}/scikit_image-0.25.2-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for name in ("astronaut.png", "camera.png", "chelsea.png", "coffee.png"):
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(f"skimage/data/{name}"))
PY
fi
echo "$dir"
