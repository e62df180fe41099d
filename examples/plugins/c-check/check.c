/*
 * A wasmalived check plugin in C: is a process running? If not, optionally run a remediation
 * command (declared in the daemon's config, by id) and look again.
 *
 * Parameters (from the check's config, in order; an unknown key is a `fail`, not ignored):
 *
 *   name       the process's short name (`/proc/PID/comm`), required, e.g. `nginx`
 *   remediate  the id of a remediation command to run when no such process runs (e.g. one
 *              declared as `systemctl restart nginx`); the check then looks again and passes
 *              if the process is back. Needs the `remediation ID` grant.
 *
 * Imports: `log` (always granted), `processes` (granted by `processes`) and `remediation`
 * (granted by `remediation ID...`). Measurements: `count`, and `remediation_exit` when the
 * remediation ran.
 *
 * Memory: the host gives each run a fresh instance, but the code still frees what it
 * allocates; the verdict's strings and list are freed by the generated post-return function,
 * so they must come from malloc.
 */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "c_check.h"

typedef exports_wasmalived_plugin_check_verdict_t verdict_t;

/* True when the WIT string `s` equals the C string `lit`. */
static bool str_is(const c_check_string_t *s, const char *lit) {
    size_t n = strlen(lit);
    return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

/*
 * A bounded text buffer. The check formats its messages with these few helpers instead of
 * snprintf: wasi-libc's stdio would pull in fd_write/fd_seek/fd_close, which the preview-1
 * adapter turns into wasi:cli/std{in,out,err}, wasi:io and wasi:filesystem imports, and the
 * host does not grant a filesystem to a check like this one.
 */
typedef struct {
    char buf[256];
    size_t len;
} text_t;

static void put_n(text_t *t, const char *s, size_t n) {
    size_t room = sizeof t->buf - 1 - t->len;
    if (n > room) {
        n = room;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void put(text_t *t, const char *s) { put_n(t, s, strlen(s)); }

static void put_str(text_t *t, const c_check_string_t *s) { put_n(t, (const char *)s->ptr, s->len); }

static void put_int(text_t *t, long long v) {
    char digits[24];
    size_t i = sizeof digits;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        digits[--i] = '-';
    }
    put_n(t, digits + i, sizeof digits - i);
}

static void log_text(wasmalived_plugin_log_level_t level, const text_t *t) {
    c_check_string_t msg = {(uint8_t *)t->buf, t->len}; /* borrowed: the host copies it */
    wasmalived_plugin_log_log(level, &msg);
}

/* Appends a measurement; `v` has room for `cap` entries. */
static void measure(verdict_t *v, size_t cap, const char *name, double value) {
    if (v->measurements.len >= cap) {
        return;
    }
    wasmalived_plugin_types_measurement_t *m = &v->measurements.ptr[v->measurements.len++];
    c_check_string_dup(&m->name, name);
    m->value = value;
}

/* `ret` = a malloc'd copy of the text (freed by the generated post-return function). */
static void dup_text(c_check_string_t *ret, const text_t *t) {
    ret->ptr = malloc(t->len ? t->len : 1);
    if (ret->ptr == NULL) {
        abort();
    }
    memcpy(ret->ptr, t->buf, t->len);
    ret->len = t->len;
}

/* Sets the verdict's status (`tag`) and its message; `fail`/`fatal` carry the message too. */
static void conclude(verdict_t *v, uint8_t tag, const text_t *t) {
    v->status.tag = tag;
    if (tag == WASMALIVED_PLUGIN_TYPES_STATUS_FAIL) {
        dup_text(&v->status.val.fail, t);
    } else if (tag == WASMALIVED_PLUGIN_TYPES_STATUS_FATAL) {
        dup_text(&v->status.val.fatal, t);
    }
    v->message.is_some = true;
    dup_text(&v->message.val, t);
}

static void fail(verdict_t *v, const text_t *t) { conclude(v, WASMALIVED_PLUGIN_TYPES_STATUS_FAIL, t); }

/*
 * How many processes named `name` run; -1 (with `v` set to `fail`) when the host could not
 * read the process table.
 */
static long count_processes(c_check_string_t *name, verdict_t *v) {
    wasmalived_plugin_processes_list_process_t list;
    c_check_string_t err;
    if (!wasmalived_plugin_processes_by_name(name, &list, &err)) {
        text_t t = {0};
        put(&t, "process table unavailable: ");
        put_str(&t, &err);
        fail(v, &t);
        c_check_string_free(&err);
        return -1;
    }
    long n = (long)list.len;
    wasmalived_plugin_processes_list_process_free(&list);
    return n;
}

/* The check proper; `params` stay owned by the caller. */
static void run_check(const exports_wasmalived_plugin_check_params_t *params, verdict_t *ret) {
    enum { MAX_MEASUREMENTS = 2 };
    text_t t = {0};
    ret->measurements.ptr = calloc(MAX_MEASUREMENTS, sizeof *ret->measurements.ptr);
    if (ret->measurements.ptr == NULL) {
        put(&t, "out of memory");
        fail(ret, &t);
        return;
    }

    c_check_string_t *name = NULL, *remediate = NULL;
    for (size_t i = 0; i < params->len; i++) {
        c_check_tuple2_string_string_t *kv = &params->ptr[i];
        if (str_is(&kv->f0, "name")) {
            name = &kv->f1;
        } else if (str_is(&kv->f0, "remediate")) {
            remediate = &kv->f1;
        } else {
            put(&t, "bad parameters: unknown parameter '");
            put_str(&t, &kv->f0);
            put(&t, "' (known: name, remediate)");
            fail(ret, &t);
            return;
        }
    }
    if (name == NULL || name->len == 0) {
        put(&t, "bad parameters: missing parameter 'name'");
        fail(ret, &t);
        return;
    }

    long n = count_processes(name, ret);
    if (n < 0) {
        return;
    }
    if (n > 0) {
        measure(ret, MAX_MEASUREMENTS, "count", (double)n);
        put_int(&t, n);
        put(&t, " ");
        put_str(&t, name);
        put(&t, " process(es) running");
        conclude(ret, WASMALIVED_PLUGIN_TYPES_STATUS_OK, &t);
        return;
    }
    put(&t, "no ");
    put_str(&t, name);
    put(&t, " process running");
    if (remediate == NULL) {
        measure(ret, MAX_MEASUREMENTS, "count", 0);
        fail(ret, &t);
        return;
    }

    /* Not running: run the remediation command, then look again. */
    put(&t, "; remediation '");
    put_str(&t, remediate);
    put(&t, "'");
    log_text(WASMALIVED_PLUGIN_LOG_LEVEL_WARN, &t);
    int32_t exit_code;
    c_check_string_t err;
    if (!wasmalived_plugin_remediation_run(remediate, &exit_code, &err)) {
        measure(ret, MAX_MEASUREMENTS, "count", 0);
        put(&t, " could not run: ");
        put_str(&t, &err);
        fail(ret, &t);
        c_check_string_free(&err);
        return;
    }
    measure(ret, MAX_MEASUREMENTS, "remediation_exit", (double)exit_code);
    put(&t, " exited ");
    put_int(&t, exit_code);

    n = count_processes(name, ret);
    if (n < 0) {
        return;
    }
    measure(ret, MAX_MEASUREMENTS, "count", (double)n);
    if (n > 0) {
        put(&t, "; now ");
        put_int(&t, n);
        put(&t, " running");
        conclude(ret, WASMALIVED_PLUGIN_TYPES_STATUS_OK, &t);
    } else {
        put(&t, "; still none running");
        fail(ret, &t);
    }
}

void exports_wasmalived_plugin_check_check(exports_wasmalived_plugin_check_params_t *params,
                                           verdict_t *ret) {
    memset(ret, 0, sizeof *ret);
    run_check(params, ret);
    exports_wasmalived_plugin_check_params_free(params);
}
