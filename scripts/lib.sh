# Shared by the scripts in this folder: paths and small helpers. Source it, don't run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE_NAME=ngx_http_captchaify_module.so
MODULE_DIR="$ROOT/target/module"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The nginx binary that matches a module flavour (vendored, debian, or either with -test).
# For Debian it is a wrapper around /usr/sbin/nginx, see scripts/build.
nginx_binary() {
    case "$1" in
        vendored | vendored-test | debian | debian-test) echo "$MODULE_DIR/$1/nginx" ;;
        *) echo "unknown flavour: $1" >&2; return 1 ;;
    esac
}
