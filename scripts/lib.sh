# Shared by the scripts in this folder: paths and small helpers. Source it, don't run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE_NAME=ngx_http_captchaify_module.so
MODULE_DIR="$ROOT/target/module"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The nginx binary that matches a module flavour.
nginx_binary() {
    case "$1" in
        vendored) echo "$MODULE_DIR/vendored/nginx" ;;
        debian) echo "$MODULE_DIR/debian/nginx" ;;  # /usr/sbin/nginx, see scripts/build
        *) echo "unknown flavour: $1" >&2; return 1 ;;
    esac
}
