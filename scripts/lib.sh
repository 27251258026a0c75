# Shared by the scripts in this folder: paths and small helpers. Source it, don't run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE_NAME=ngx_http_captchaify_module.so
MODULE_DIR="$ROOT/target/module"
# The test builds (feature `test-answers`: their captcha pages hand every client the answer)
# live apart from the release modules, so that one is not taken for the other.
TEST_MODULE_DIR="$ROOT/target/test-module"
# The project's scripts load the test builds knowingly; anywhere else a test build logs an
# [alert] at start (see src/nginx/mod.rs).
export CAPTCHAIFY_TEST_MODULE=1

# install_atomic FROM TO [MODE]: puts a copy of FROM at TO by renaming a temporary copy in
# TO's directory over it. A module or binary a running nginx has mapped keeps its old file
# (inode) and never sees a half-written one; copying over it in place (`cp`) would rewrite
# pages under the running workers (SIGBUS, then SIGSEGV), and a reload would kill the master.
install_atomic() {
    local from="$1" to="$2" mode="${3:-0755}" tmp
    mkdir -p "$(dirname "$to")"
    tmp=$(mktemp "$(dirname "$to")/.$(basename "$to").XXXXXX")
    cp "$from" "$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$to"
}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The folder of a module flavour's build (vendored, debian, or either with -test).
variant_dir() {
    case "$1" in
        vendored | debian) echo "$MODULE_DIR/$1" ;;
        vendored-test | debian-test) echo "$TEST_MODULE_DIR/${1%-test}" ;;
        *) echo "unknown flavour: $1" >&2; return 1 ;;
    esac
}

# The nginx binary that matches a module flavour. For Debian it is a wrapper around
# /usr/sbin/nginx, see scripts/build.
nginx_binary() {
    local dir
    dir=$(variant_dir "$1") || return 1
    echo "$dir/nginx"
}

# The module file of a flavour.
module_file() {
    local dir
    dir=$(variant_dir "$1") || return 1
    echo "$dir/$MODULE_NAME"
}

# as_root CMD...: runs CMD as root (through sudo when the script is not root).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install PACKAGE...: installs Debian packages (no recommends), refreshing the package
# lists first, once per script. Output goes to stderr, so that callers' stdout stays theirs.
apt_install() {
    say "installing $* (apt)"
    if [ -z "${APT_LISTS_FRESH:-}" ]; then
        as_root apt-get update -q >&2 || say "apt-get update failed; trying the package lists there are"
        APT_LISTS_FRESH=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

# tool_binary NAME: builds one of the project's tools (src/bin/NAME.rs, the `tools` feature)
# in target/tools, which keeps the module's build in target/release intact, and prints its path.
tool_binary() {
    CARGO_TARGET_DIR="$ROOT/target/tools" cargo build --quiet --release --locked \
        --no-default-features --features tools --bin "$1" >&2
    echo "$ROOT/target/tools/release/$1"
}

# python_venv DIR IMPORTS PACKAGE...: a virtualenv at DIR in which `import IMPORTS` works,
# installing the PyPI packages into it when it does not. Prints DIR/bin/python.
python_venv() {
    local dir="$1" imports="$2"
    shift 2
    if [ ! -x "$dir/bin/python" ]; then
        say "creating the virtualenv $dir"
        python3 -m venv "$dir" >&2
    fi
    if ! "$dir/bin/python" -c "import $imports" 2>/dev/null; then
        say "installing $* into $dir (pip)"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    fi
    echo "$dir/bin/python"
}

# apt_download PACKAGE: downloads PACKAGE's .deb into the current folder (its maintainer
# scripts never run), refreshing the package lists once if apt does not know it.
apt_download() {
    local opts=()
    # As root, apt downloads as _apt, which cannot write here (a warning, then it falls back).
    [ "$(id -u)" -ne 0 ] || opts=(-o APT::Sandbox::User=root)
    apt-get download -q "${opts[@]}" "$1" >&2 && return 0
    say "apt-get download failed; refreshing the package lists"
    as_root apt-get update -q >&2
    apt-get download -q "${opts[@]}" "$1" >&2
}
