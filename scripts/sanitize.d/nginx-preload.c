/* Preloaded into nginx by scripts/sanitize and scripts/valgrind (docs/sanitizers.md).
 *
 * dlclose: nginx unloads its dynamic modules when it destroys its cycle, at exit. The module's
 * process-wide statics (built once: the language catalogs, the crawler regexes...) vanish with
 * its data segment, and every block they held is reported as "definitely lost" by valgrind and
 * LeakSanitizer, which look for leaks after that. Keeping the module mapped leaves them
 * reachable, as they are in the running process, so that a leak report means a block that
 * nothing points at any more. nginx's behaviour is otherwise unchanged.
 *
 * __lsan_is_turned_off: LeakSanitizer checks only the processes that served: the daemon that
 * nginx's ngx_daemon() makes (the one that calls setsid) and the workers it forks. Not the
 * process that forked it and exits at once, nor one that fails to start (a configuration error,
 * a port still taken): nginx's main() returns without freeing its first pool, a leak of bare
 * nginx that says nothing about requests, and a leak report would turn their exit status into
 * LeakSanitizer's, which the suites' must_die blocks check. */
#include <sys/syscall.h>
#include <unistd.h>

static int daemonised;

int dlclose(void *handle)
{
    (void) handle;
    return 0;
}

pid_t setsid(void)
{
    daemonised = 1;
    return (pid_t) syscall(SYS_setsid);
}

int __lsan_is_turned_off(void)
{
    return !daemonised;
}
