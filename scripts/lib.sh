# Shared by the scripts in this folder: paths and small helpers. Source it, don't run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE_NAME=ngx_http_captchaify_module.so
MODULE_DIR="$ROOT/target/module"

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

# The nginx binary that matches a module flavour (vendored, debian, or either with -test).
# For Debian it is a wrapper around /usr/sbin/nginx, see scripts/build.
nginx_binary() {
    case "$1" in
        vendored | vendored-test | debian | debian-test) echo "$MODULE_DIR/$1/nginx" ;;
        *) echo "unknown flavour: $1" >&2; return 1 ;;
    esac
}
