/* Preloaded into nginx by scripts/sanitize and scripts/valgrind (docs/sanitizers.md).
 *
 * nginx unloads its dynamic modules (dlclose) when it destroys its cycle, at exit. The module's
 * process-wide statics (built once: the language catalogs, the crawler regexes...) vanish with
 * its data segment, and every block they held is reported as "definitely lost" by valgrind and
 * LeakSanitizer, which check for leaks after that. Keeping the module mapped leaves them
 * reachable, as they are in the running process, so that a leak report means a block that
 * nothing points at any more. nginx's own behaviour is otherwise unchanged. */
int dlclose(void *handle)
{
    (void) handle;
    return 0;
}
