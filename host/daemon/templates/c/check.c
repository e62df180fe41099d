/*
 * `{{name}}`: a wasmalived check plugin in C.
 *
 * Healthy while the check has run fewer than `fail_after` times (never, by default): a
 * starting point that shows parameters, the scratch store, logging and measurements.
 * Replace `run` with your check.
 *
 * Parameters: `fail_after` -- fail once the check has run this many times (optional).
 *
 * No stdio (snprintf included): wasi-libc's stdio imports fd_write/fd_seek/fd_close, which
 * the preview-1 adapter turns into wasi:cli, wasi:io and wasi:filesystem imports that the
 * daemon does not grant to a check. Texts are built with the small helpers below.
 *
 * Memory: the verdict's strings and list are freed by the generated post-return function, so
 * they must come from malloc.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "{{crate}}.h"

typedef exports_wasmalived_plugin_check_verdict_t verdict_t;
typedef {{crate}}_string_t string_t;

static const char RUNS_KEY[] = "runs";

/* A bounded text buffer. */
typedef struct {
    char buf[200];
    size_t len;
} text_t;

static void put_n(text_t *t, const char *s, size_t n) {
    size_t room = sizeof t->buf - t->len;
    memcpy(t->buf + t->len, s, n < room ? n : room);
    t->len += n < room ? n : room;
}

static void put(text_t *t, const char *s) { put_n(t, s, strlen(s)); }

static void put_u64(text_t *t, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        put_n(t, &digits[--n], 1);
    }
}

/* A decimal number of `len` bytes; false if it is not one. */
static bool parse_u64(const uint8_t *s, size_t len, uint64_t *out) {
    uint64_t v = 0;
    if (len == 0 || len > 18) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* A malloc'd WIT string holding the text (the verdict owns it). */
static string_t owned(const text_t *t) {
    string_t s = {.ptr = malloc(t->len ? t->len : 1), .len = t->len};
    if (s.ptr == NULL) {
        abort();
    }
    memcpy(s.ptr, t->buf, t->len);
    return s;
}

/* A borrowed WIT string of a C string (for imports). */
static string_t borrowed(const char *s) {
    string_t w = {.ptr = (uint8_t *)s, .len = strlen(s)};
    return w;
}

static void log_text(wasmalived_plugin_log_level_t level, const text_t *t) {
    string_t s = {.ptr = (uint8_t *)t->buf, .len = t->len};
    wasmalived_plugin_log_log(level, &s);
}

static void fail(verdict_t *v, const text_t *why) {
    v->status.tag = WASMALIVED_PLUGIN_TYPES_STATUS_FAIL;
    v->status.val.fail = owned(why);
}

/* The run counter from scratch, plus one, stored back. */
static uint64_t count_run(void) {
    string_t key = borrowed(RUNS_KEY);
    {{crate}}_list_u8_t stored;
    uint64_t runs = 0;
    if (wasmalived_plugin_scratch_get(&key, &stored)) {
        if (!parse_u64(stored.ptr, stored.len, &runs)) {
            runs = 0;
        }
        {{crate}}_list_u8_free(&stored);
    }
    runs++;
    text_t value = {.len = 0};
    put_u64(&value, runs);
    {{crate}}_list_u8_t bytes = {.ptr = (uint8_t *)value.buf, .len = value.len};
    string_t err;
    if (!wasmalived_plugin_scratch_set(&key, &bytes, &err)) {
        text_t t = {.len = 0};
        put(&t, "cannot keep the run counter: ");
        put_n(&t, (const char *)err.ptr, err.len);
        log_text(WASMALIVED_PLUGIN_LOG_LEVEL_WARN, &t);
        {{crate}}_string_free(&err);
    }
    return runs;
}

static void run(const exports_wasmalived_plugin_check_params_t *params, verdict_t *v) {
    uint64_t fail_after = 0; /* 0: never */
    for (size_t i = 0; i < params->len; i++) {
        const string_t *key = &params->ptr[i].f0, *value = &params->ptr[i].f1;
        text_t t = {.len = 0};
        if (key->len != strlen("fail_after") || memcmp(key->ptr, "fail_after", key->len) != 0) {
            put(&t, "unknown parameter `");
            put_n(&t, (const char *)key->ptr, key->len);
            put(&t, "` (known: fail_after)");
            fail(v, &t);
            return;
        }
        if (!parse_u64(value->ptr, value->len, &fail_after) || fail_after == 0) {
            put(&t, "bad parameter fail_after=`");
            put_n(&t, (const char *)value->ptr, value->len);
            put(&t, "`: at least 1");
            fail(v, &t);
            return;
        }
    }

    uint64_t runs = count_run();
    text_t line = {.len = 0};
    put(&line, "{{name}}: run ");
    put_u64(&line, runs);
    log_text(WASMALIVED_PLUGIN_LOG_LEVEL_INFO, &line);

    v->measurements.ptr = malloc(sizeof *v->measurements.ptr);
    if (v->measurements.ptr == NULL) {
        abort();
    }
    v->measurements.len = 1;
    {{crate}}_string_dup(&v->measurements.ptr[0].name, "runs");
    v->measurements.ptr[0].value = (double)runs;

    text_t t = {.len = 0};
    if (fail_after != 0 && runs >= fail_after) {
        put(&t, "ran ");
        put_u64(&t, runs);
        put(&t, " times (fail_after=");
        put_u64(&t, fail_after);
        put(&t, ")");
        fail(v, &t);
        return;
    }
    v->status.tag = WASMALIVED_PLUGIN_TYPES_STATUS_OK;
    put(&t, "run ");
    put_u64(&t, runs);
    v->message.is_some = true;
    v->message.val = owned(&t);
}

void exports_wasmalived_plugin_check_check(exports_wasmalived_plugin_check_params_t *params,
                                           verdict_t *ret) {
    memset(ret, 0, sizeof *ret);
    run(params, ret);
    exports_wasmalived_plugin_check_params_free(params);
}
