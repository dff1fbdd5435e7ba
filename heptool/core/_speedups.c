/*
 * heptool.core._speedups: optional C versions of the two per-packet hot spots of
 * `heptool decode` (PERFORMANCE.md: a Python SIP summary costs ~3 us a packet, the whole
 * budget at 200,000 packets/s is 5 us).
 *
 * The Python code stays the reference and the fallback: every function here returns None
 * whenever its input is anything but the plain common case, and the caller then takes the
 * Python path.  What it does return is equal to what the Python code returns (tested on
 * every capture in tests/vectors and by property tests with generated and mutated input).
 * The SIP reading (sip_scan) implements the definition in heptool/sip/info.py's docstring
 * and is tested against its line-by-line reference, sip_text_info_ref; it reads every SIP
 * text it is given as UTF-8 (declining only what it cannot see: lone surrogates, sip_ids
 * input over 64 KiB, JSON wrappings beyond the plain one).
 *
 * Hostile input: every read is bounded by the buffer length; no allocation depends on more
 * than the input's size; all Python errors propagate.
 *
 * Written for heptool; no code from any other project.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* SIP: heptool.sip's reading of SIP text (heptool/sip/info.py's docstring defines it)   */
/* ------------------------------------------------------------------------------------ */

static PyObject *k_method, *k_ruri, *k_status, *k_reason, *k_call_id, *k_cseq,
    *k_cseq_method, *k_from_tag, *k_to_tag, *k_x_cid;

/* a token character (RFC 3261 token, plus ^ and |): ASCII only */
static int
is_token_char(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return 1;
    if (c >= 'a' && c <= 'z') return 1;
    if (c >= '0' && c <= '9') return 1;
    return c != 0 && strchr("!%'*+.^_`|~-", c) != NULL;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* strict UTF-8 as Python's decoder checks it (no overlongs, surrogates or > U+10FFFF) */
static int
utf8_valid(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n) return 0;
            unsigned char c1 = s[i + 1], c2 = s[i + 2];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && c1 < 0xA0) return 0;   /* overlong */
            if (c == 0xED && c1 >= 0xA0) return 0;  /* surrogate */
            i += 3;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n) return 0;
            unsigned char c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
            if (c == 0xF0 && c1 < 0x90) return 0;   /* overlong */
            if (c == 0xF4 && c1 >= 0x90) return 0;  /* > U+10FFFF */
            i += 4;
        }
        else return 0;
    }
    return 1;
}

/* SP, HTAB and CR stripped from both ends of s[0:n] */
static void
strip_value(const char **s, Py_ssize_t *n)
{
    while (*n > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t' || (*s)[0] == '\r')) { (*s)++; (*n)--; }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

static int
set_str(PyObject *d, PyObject *key, const char *s, Py_ssize_t n)
{
    /* "replace": the bytes of sip_ids may hold invalid UTF-8 (text from a str never does);
       a field never splits a UTF-8 sequence (it starts and ends next to ASCII), so this is
       the same text as the slice of the whole payload decoded with "replace" */
    PyObject *v = PyUnicode_DecodeUTF8(s, n, "replace");
    if (v == NULL) return -1;
    int r = PyDict_SetItem(d, key, v);
    Py_DECREF(v);
    return r;
}

/* dict[key] = value, stealing the value reference (NULL value: error already set) */
static int
put(PyObject *d, PyObject *key, PyObject *value)
{
    if (value == NULL) return -1;
    int r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return r;
}

static int
put_borrowed(PyObject *d, PyObject *key, PyObject *value)
{
    return PyDict_SetItem(d, key, value);
}

enum { H_CALLID, H_CSEQ, H_FROM, H_TO, H_XCID, H_COUNT };

/* s[0:n] equals the lower-case literal lit (n bytes) ASCII-case-insensitively */
static int
ieq(const char *s, const char *lit, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)lit[i]) return 0;
    }
    return 1;
}

/* the wanted header a name s[0:n] (a token) is, ASCII-case-insensitively, or -1 */
static int
wanted_header(const char *s, Py_ssize_t n)
{
    switch (n) {
    case 1:
        if (ieq(s, "i", 1)) return H_CALLID;
        if (ieq(s, "f", 1)) return H_FROM;
        if (ieq(s, "t", 1)) return H_TO;
        return -1;
    case 2: return ieq(s, "to", 2) ? H_TO : -1;
    case 4:
        if (ieq(s, "cseq", 4)) return H_CSEQ;
        if (ieq(s, "from", 4)) return H_FROM;
        return -1;
    case 5: return ieq(s, "x-cid", 5) ? H_XCID : -1;
    case 7: return ieq(s, "call-id", 7) ? H_CALLID : -1;
    default: return -1;
    }
}

/* What the reading of a SIP text found (pointers into it). */
struct sipscan {
    int status;                  /* reply code, or 0 for a request */
    const char *a, *b;           /* reason, or method and request URI */
    Py_ssize_t alen, blen;
    const char *val[H_COUNT];    /* the first value of each wanted header (stripped), or NULL */
    Py_ssize_t vlen[H_COUNT];
};

/* The first line and the header block of the text s[0:n] (UTF-8, or any bytes: every class
   is ASCII), read as heptool.sip.info defines it.  1: SIP, scanned; 0: not SIP.  Every read
   is inside s[0:n]; the work is linear in n. */
static int
sip_scan(const char *s, Py_ssize_t n, struct sipscan *r)
{
    memset(r, 0, sizeof(*r));
    /* the first line: up to the first LF, one CR before it removed */
    const char *lf = n > 0 ? memchr(s, '\n', (size_t)n) : NULL;
    Py_ssize_t eol = lf ? lf - s : n;
    Py_ssize_t fl = eol;
    if (fl > 0 && s[fl - 1] == '\r') fl--;
    if (fl >= 8 && memcmp(s, "SIP/2.0 ", 8) == 0) {
        /* SIP/2.0 SP d d d [SP reason], the first digit 1-6 */
        if (fl < 11) return 0;
        if (!(s[8] >= '1' && s[8] <= '6' && s[9] >= '0' && s[9] <= '9' && s[10] >= '0' &&
              s[10] <= '9'))
            return 0;
        if (fl > 11 && s[11] != ' ') return 0;
        r->status = (s[8] - '0') * 100 + (s[9] - '0') * 10 + (s[10] - '0');
        r->a = s + (fl > 12 ? 12 : fl);
        r->alen = fl > 12 ? fl - 12 : 0;
    }
    else {
        /* method SP uri SP SIP/2.0: a token, a non-empty uri without SP */
        const char *sp1 = fl > 0 ? memchr(s, ' ', (size_t)fl) : NULL;
        if (sp1 == NULL || sp1 == s) return 0;
        const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(s + fl - sp1 - 1));
        if (sp2 == NULL || sp2 == sp1 + 1) return 0;
        if (s + fl - sp2 != 8 || memcmp(sp2, " SIP/2.0", 8) != 0) return 0;
        for (const char *p = s; p < sp1; p++)
            if (!is_token_char((unsigned char)*p)) return 0;
        r->a = s;
        r->alen = sp1 - s;
        r->b = sp1 + 1;
        r->blen = sp2 - sp1 - 1;
    }
    /* the header block: the lines after the first, up to the first empty line or the end */
    Py_ssize_t pos = eol + 1;  /* the start of the next line */
    while (pos < n) {
        const char *nx = memchr(s + pos, '\n', (size_t)(n - pos));
        Py_ssize_t le = nx ? nx - s : n;   /* the LF ending this line, or the end */
        Py_ssize_t ce = le;
        if (ce > pos && s[ce - 1] == '\r') ce--;
        if (ce == pos) break;             /* the empty line */
        /* name *(SP / HTAB) ":" value; a line starting with SP/HTAB is no header line */
        Py_ssize_t i = pos;
        while (i < ce && is_token_char((unsigned char)s[i])) i++;
        if (i > pos) {
            Py_ssize_t name_end = i;
            while (i < ce && is_blank(s[i])) i++;
            if (i < ce && s[i] == ':') {
                int which = wanted_header(s + pos, name_end - pos);
                if (which >= 0 && r->val[which] == NULL) {  /* the first occurrence wins */
                    const char *v = s + i + 1;
                    Py_ssize_t vn = ce - i - 1;
                    strip_value(&v, &vn);
                    r->val[which] = v;  /* not NULL even when empty: later ones are ignored */
                    r->vlen[which] = vn;
                }
            }
        }
        if (nx == NULL) break;
        pos = le + 1;
    }
    return 1;
}

/* The values of sip_text_info's dict, derived from a scan (pointers into the text). */
struct sipvals {
    int status;                         /* 0: a request */
    const char *a, *b;                  /* reason | method, request URI */
    Py_ssize_t alen, blen;
    const char *call; Py_ssize_t calln; /* Call-ID, NULL when absent or empty */
    int has_cseq; long long cseq;
    const char *cm; Py_ssize_t cmn;     /* cseq method, NULL when empty */
    const char *ft; Py_ssize_t ftn;     /* from tag, NULL when none */
    const char *tt; Py_ssize_t ttn;     /* to tag, NULL when none */
    const char *x; Py_ssize_t xn;       /* X-CID, NULL when absent or empty */
};

/* the tag of a From/To value v[0:n] (stripped): after the last '>', the first
   ";" *(SP/HTAB) "tag" *(SP/HTAB) "=" *(SP/HTAB), then up to ; , SP HTAB CR LF.
   1: found (possibly empty); 0: none */
static int
header_tag(const char *v, Py_ssize_t n, const char **tag, Py_ssize_t *tn)
{
    Py_ssize_t start = 0;
    for (Py_ssize_t i = n; i > 0; i--)
        if (v[i - 1] == '>') { start = i; break; }
    for (Py_ssize_t p = start; p < n; p++) {
        if (v[p] != ';') continue;
        Py_ssize_t i = p + 1;
        while (i < n && is_blank(v[i])) i++;
        if (n - i < 3 || (v[i] | 0x20) != 't' || (v[i + 1] | 0x20) != 'a' ||
            (v[i + 2] | 0x20) != 'g')
            continue;
        i += 3;
        while (i < n && is_blank(v[i])) i++;
        if (i >= n || v[i] != '=') continue;
        i++;
        while (i < n && is_blank(v[i])) i++;
        Py_ssize_t e = i;
        while (e < n && v[e] != ';' && v[e] != ',' && v[e] != ' ' && v[e] != '\t' &&
               v[e] != '\r' && v[e] != '\n')
            e++;
        *tag = v + i;
        *tn = e - i;
        return 1;
    }
    return 0;
}

static void
sip_derive(const struct sipscan *sc, struct sipvals *v)
{
    memset(v, 0, sizeof(*v));
    v->status = sc->status;
    v->a = sc->a; v->alen = sc->alen;
    v->b = sc->b; v->blen = sc->blen;
    if (sc->val[H_CALLID] && sc->vlen[H_CALLID] > 0) {
        v->call = sc->val[H_CALLID];
        v->calln = sc->vlen[H_CALLID];
    }
    if (sc->val[H_CSEQ]) {
        /* split at the first run of SP/HTAB: 1-10 ASCII digits, then the method */
        const char *c = sc->val[H_CSEQ];
        Py_ssize_t len = sc->vlen[H_CSEQ];
        Py_ssize_t k = 0;
        while (k < len && !is_blank(c[k])) k++;
        int digits = k > 0 && k <= 10;
        long long num = 0;
        for (Py_ssize_t i = 0; digits && i < k; i++) {
            if (c[i] < '0' || c[i] > '9') digits = 0;
            else num = num * 10 + (c[i] - '0');
        }
        if (digits) { v->has_cseq = 1; v->cseq = num; }
        Py_ssize_t m = k;
        while (m < len && is_blank(c[m])) m++;
        if (m < len) { v->cm = c + m; v->cmn = len - m; }
    }
    if (sc->val[H_FROM] && header_tag(sc->val[H_FROM], sc->vlen[H_FROM], &v->ft, &v->ftn) &&
        v->ftn == 0)
        v->ft = NULL;
    if (sc->val[H_TO] && header_tag(sc->val[H_TO], sc->vlen[H_TO], &v->tt, &v->ttn) &&
        v->ttn == 0)
        v->tt = NULL;
    if (sc->val[H_XCID] && sc->vlen[H_XCID] > 0) {
        v->x = sc->val[H_XCID];
        v->xn = sc->vlen[H_XCID];
    }
}

/* sip_text_info's dict of derived values */
static PyObject *
sip_dict(const struct sipvals *v)
{
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    if (v->status) {
        if (put(d, k_status, PyLong_FromLong(v->status)) < 0) goto error;
        if (set_str(d, k_reason, v->a, v->alen) < 0) goto error;
    }
    else {
        if (set_str(d, k_method, v->a, v->alen) < 0) goto error;
        if (set_str(d, k_ruri, v->b, v->blen) < 0) goto error;
    }
    if (v->call && set_str(d, k_call_id, v->call, v->calln) < 0) goto error;
    if (v->has_cseq && put(d, k_cseq, PyLong_FromLongLong(v->cseq)) < 0) goto error;
    if (v->cm && set_str(d, k_cseq_method, v->cm, v->cmn) < 0) goto error;
    if (v->ft && set_str(d, k_from_tag, v->ft, v->ftn) < 0) goto error;
    if (v->tt && set_str(d, k_to_tag, v->tt, v->ttn) < 0) goto error;
    if (v->x && set_str(d, k_x_cid, v->x, v->xn) < 0) goto error;
    return d;
error:
    Py_DECREF(d);
    return NULL;
}

/* sip_summary(text): sip_text_info(text), or None when the text is not SIP or cannot be
   read here (lone surrogates: the Python code copes) */
static PyObject *
sip_summary(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyUnicode_Check(arg)) Py_RETURN_NONE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    struct sipscan sc;
    struct sipvals v;
    if (!sip_scan(s, n, &sc)) Py_RETURN_NONE;
    sip_derive(&sc, &v);
    return sip_dict(&v);
}

/* OpenSIPS's JSON wrapping {"payload": "<SIP>"} undone, for the plain case only: the whole
   text is `{ "payload" : "<string>" }` (JSON blanks around the parts), the string has only
   the escapes \r \n \t \" \\ \/ and valid UTF-8, no raw control characters.  Returns the
   length written to out (at most n), or 0: anything else (json.loads decides). */
static Py_ssize_t
unwrap_payload(const char *s, Py_ssize_t n, char *out)
{
#define BLANKS while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++
    Py_ssize_t i = 1;
    BLANKS;
    /* sip_payload looks for the key in the first 64 bytes */
    if (n - i < 9 || i + 9 > 64 || memcmp(s + i, "\"payload\"", 9) != 0) return 0;
    i += 9;
    BLANKS;
    if (i >= n || s[i] != ':') return 0;
    i++;
    BLANKS;
    if (i >= n || s[i] != '"') return 0;
    i++;
    Py_ssize_t o = 0;
    Py_ssize_t start = i;
    for (;;) {
        if (i >= n) return 0;
        unsigned char c = (unsigned char)s[i];
        if (c == '"') break;
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (i + 1 >= n) return 0;
            switch (s[i + 1]) {
            case 'r': out[o++] = '\r'; break;
            case 'n': out[o++] = '\n'; break;
            case 't': out[o++] = '\t'; break;
            case '"': out[o++] = '"'; break;
            case '\\': out[o++] = '\\'; break;
            case '/': out[o++] = '/'; break;
            default: return 0;  /* \uXXXX, \b, \f: json.loads */
            }
            i += 2;
            continue;
        }
        out[o++] = (char)c;
        i++;
    }
    if (!utf8_valid((const unsigned char *)s + start, i - start)) return 0;
    i++;
    BLANKS;
    if (i != n - 1 || s[i] != '}') return 0;
#undef BLANKS
    return o;
}

/* sip_ids(payload): (Call-ID, label, X-CID) of plain SIP bytes or of OpenSIPS's plain JSON
   wrapping, (None, None, None) when the payload is not SIP, or None (Python decides). */
static PyObject *
sip_ids(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyBytes_CheckExact(arg)) Py_RETURN_NONE;
    const char *s = PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    if (n > 65536) Py_RETURN_NONE;
    char unwrapped[65536];
    struct sipscan sc;
    if (n == 0) return Py_BuildValue("(OOO)", Py_None, Py_None, Py_None);
    if (s[0] == '{') {
        n = unwrap_payload(s, n, unwrapped);
        if (n <= 0) Py_RETURN_NONE;
        s = unwrapped;
    }
    if (!sip_scan(s, n, &sc)) return Py_BuildValue("(OOO)", Py_None, Py_None, Py_None);
    PyObject *call, *label, *x;
    Py_ssize_t cn = sc.val[H_CALLID] ? sc.vlen[H_CALLID] : 0;
    if (cn > 0) {
        call = PyUnicode_DecodeUTF8(sc.val[H_CALLID], cn, "replace");
        if (call == NULL) return NULL;
    }
    else {
        Py_INCREF(Py_None);
        call = Py_None;
    }
    if (sc.status)
        label = PyUnicode_FromFormat("%d", sc.status);
    else
        label = PyUnicode_DecodeUTF8(sc.a, sc.alen, "replace");  /* a token: ASCII */
    if (label == NULL) { Py_DECREF(call); return NULL; }
    Py_ssize_t xn = sc.val[H_XCID] ? sc.vlen[H_XCID] : 0;
    if (xn > 0) {
        x = PyUnicode_DecodeUTF8(sc.val[H_XCID], xn, "replace");
        if (x == NULL) { Py_DECREF(call); Py_DECREF(label); return NULL; }
    }
    else {
        Py_INCREF(Py_None);
        x = Py_None;
    }
    PyObject *t = PyTuple_Pack(3, call, label, x);
    Py_DECREF(call);
    Py_DECREF(label);
    Py_DECREF(x);
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* HEP3 bytes -> record: to_record(decode(data)) for the plain common packet               */
/* ------------------------------------------------------------------------------------ */

/* set by configure() from heptool.core.record (the Python side owns every table) */
static PyObject *c_families, *c_protos, *c_seconds, *c_format_time, *c_ip6_text, *c_pairs,
    *c_sip_other;
static PyObject *c_names[0x66];  /* chunk type -> its record name (types used below) */
static int configured = 0;

static PyObject *k_index, *k_frame, *k_hep_transport, *k_hep_src, *k_hep_dst, *k_version,
    *k_ts_sec, *k_ts_usec, *k_time, *k_family, *k_ip_proto, *k_src_ip, *k_src_port, *k_dst_ip,
    *k_dst_port, *k_proto_type, *k_proto, *k_capture_id, *k_node_name, *k_auth_key,
    *k_correlation_id, *k_extra_correlation, *k_extra_correlation_text, *k_payload, *k_chunks,
    *k_sip;

static PyObject *
configure(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *families, *protos, *seconds, *format_time, *ip6_text, *pairs, *names, *sip_other;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOO!O", &PyDict_Type, &families, &PyDict_Type, &protos,
                          &PyDict_Type, &seconds, &format_time, &ip6_text, &pairs,
                          &PyDict_Type, &names, &sip_other))
        return NULL;
    static const int types[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x0E, 0x0F, 0x11, 0x13,
                                0x65};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        PyObject *key = PyLong_FromLong(types[i]);
        if (key == NULL) return NULL;
        PyObject *name = PyDict_GetItemWithError(names, key);
        Py_DECREF(key);
        if (name == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "no name for chunk type %d", types[i]);
            return NULL;
        }
        Py_INCREF(name);
        Py_XSETREF(c_names[types[i]], name);
    }
#define KEEP(var, obj) Py_INCREF(obj); Py_XSETREF(var, obj);
    KEEP(c_families, families);
    KEEP(c_protos, protos);
    KEEP(c_seconds, seconds);
    KEEP(c_format_time, format_time);
    KEEP(c_ip6_text, ip6_text);
    KEEP(c_pairs, pairs);
    KEEP(c_sip_other, sip_other);
#undef KEEP
    configured = 1;
    Py_RETURN_NONE;
}

/* "a.b.c.d" into buf (at least 16 bytes); returns its length (Python's "%d.%d.%d.%d") */
static int
fmt_ip4(char *buf, const unsigned char *b)
{
    int n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (i) buf[n++] = '.';
        if (v >= 100) { buf[n++] = (char)('0' + v / 100); v %= 100; buf[n++] = (char)('0' + v / 10); }
        else if (v >= 10) buf[n++] = (char)('0' + v / 10);
        buf[n++] = (char)('0' + v % 10);
    }
    return n;
}

static PyObject *
ip4_str(const unsigned char *b)
{
    char buf[16];
    return PyUnicode_FromStringAndSize(buf, fmt_ip4(buf, b));
}

static unsigned long
be(const unsigned char *p, int n)
{
    unsigned long v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

#define SLOT_FAMILY 0
#define SLOT_IP_PROTO 1
#define SLOT_SRC_PORT 2
#define SLOT_DST_PORT 3
#define SLOT_TS_SEC 4
#define SLOT_TS_USEC 5
#define SLOT_PROTO_TYPE 6
#define SLOT_CAPTURE_ID 7
#define NUM_SLOTS 8

/* The chunks of a plain HEP3 packet: vendor 0 only, the fixed chunks at their exact sizes,
   the text chunks (payload, auth key, correlation id, node name, 0x0065), each chunk type
   at most once (src/dst: one IPv4 or one IPv6 chunk), nothing after the last chunk.
   1: parsed; 0: anything else (the Python decoder decides).  Reads stay inside b[0:n]. */
struct hep3 {
    unsigned long fixed[NUM_SLOTS];
    int have;  /* bit per fixed slot */
    const unsigned char *src, *dst;
    int src_len, dst_len;
    const unsigned char *text[5];  /* payload, auth, corr, node, extra */
    Py_ssize_t tlen[5];
    int types[32];
    int ntypes;
};

static int
parse_hep3(const unsigned char *b, Py_ssize_t n, struct hep3 *h)
{
    memset(h, 0, sizeof(*h));
    /* the header: HEP3 magic and a length that is the whole buffer */
    if (n < 6 || memcmp(b, "HEP3", 4) != 0 || (Py_ssize_t)be(b + 4, 2) != n) return 0;
    Py_ssize_t off = 6;
    while (off < n) {
        if (n - off < 6) return 0;
        unsigned long vendor = be(b + off, 2), ctype = be(b + off + 2, 2), clen = be(b + off + 4, 2);
        if (vendor != 0 || clen < 6 || (Py_ssize_t)clen > n - off) return 0;
        const unsigned char *body = b + off + 6;
        int blen = (int)clen - 6;
        int slot = -1, size = 0, ti = -1;
        switch (ctype) {
        case 1: slot = SLOT_FAMILY; size = 1; break;
        case 2: slot = SLOT_IP_PROTO; size = 1; break;
        case 7: slot = SLOT_SRC_PORT; size = 2; break;
        case 8: slot = SLOT_DST_PORT; size = 2; break;
        case 9: slot = SLOT_TS_SEC; size = 4; break;
        case 10: slot = SLOT_TS_USEC; size = 4; break;
        case 11: slot = SLOT_PROTO_TYPE; size = 1; break;
        case 12: slot = SLOT_CAPTURE_ID; size = 4; break;
        case 3: case 5:
            if (h->src != NULL || blen != (ctype == 3 ? 4 : 16)) return 0;
            h->src = body; h->src_len = blen;
            break;
        case 4: case 6:
            if (h->dst != NULL || blen != (ctype == 4 ? 4 : 16)) return 0;
            h->dst = body; h->dst_len = blen;
            break;
        case 0x0F: ti = 0; break;
        case 0x0E: ti = 1; break;
        case 0x11: ti = 2; break;
        case 0x13: ti = 3; break;
        case 0x65: ti = 4; break;
        default: return 0;
        }
        if (slot >= 0) {
            if ((h->have & (1 << slot)) || blen != size) return 0;
            h->have |= 1 << slot;
            h->fixed[slot] = be(body, size);
        }
        else if (ti >= 0) {
            if (h->text[ti] != NULL) return 0;
            h->text[ti] = body;
            h->tlen[ti] = blen;
        }
        if (h->ntypes == 32) return 0;  /* cannot happen: 17 types, each once */
        h->types[h->ntypes++] = (int)ctype;
        off += (Py_ssize_t)clen;
    }
    return 1;
}

static PyObject *
hep3_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "hep3_record(data, index, frame, transport, src, dst[, sip])");
        return NULL;
    }
    int want_sip = 0;
    if (nargs == 7) {
        want_sip = PyObject_IsTrue(args[6]);
        if (want_sip < 0) return NULL;
    }
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "heptool.core._speedups: configure() first");
        return NULL;
    }
    PyObject *data = args[0];
    if (!PyBytes_CheckExact(data)) Py_RETURN_NONE;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    struct hep3 h;
    if (!parse_hep3(b, n, &h)) Py_RETURN_NONE;
    if (h.have != (1 << NUM_SLOTS) - 1 || h.src == NULL || h.dst == NULL) Py_RETURN_NONE;
    if (h.fixed[SLOT_TS_USEC] >= 1000000) Py_RETURN_NONE;
    unsigned long *fixed = h.fixed;
    const unsigned char *src = h.src, *dst = h.dst;
    int src_len = h.src_len, dst_len = h.dst_len;
    const unsigned char **text = h.text;
    Py_ssize_t *tlen = h.tlen;
    int *types = h.types;
    int ntypes = h.ntypes;

    /* the text values first: invalid UTF-8 means the full path */
    PyObject *tv[5] = {NULL};
    for (int i = 0; i < 5; i++) {
        if (text[i] == NULL) continue;
        tv[i] = PyUnicode_DecodeUTF8((const char *)text[i], tlen[i], NULL);
        if (tv[i] == NULL) {
            PyObject *err = PyErr_Occurred();
            int decode_error = err && PyErr_GivenExceptionMatches(err, PyExc_UnicodeDecodeError);
            for (int j = 0; j < i; j++) Py_XDECREF(tv[j]);
            if (decode_error) {
                PyErr_Clear();
                Py_RETURN_NONE;
            }
            return NULL;
        }
    }

    PyObject *d = PyDict_New();
    PyObject *tmp;
    if (d == NULL) goto error;
    if (put_borrowed(d, k_index, args[1]) < 0) goto error;
    if (args[2] != Py_None) {
        if (put_borrowed(d, k_frame, args[2]) < 0) goto error;
        if (put_borrowed(d, k_hep_transport, args[3]) < 0) goto error;
        if (put_borrowed(d, k_hep_src, args[4]) < 0) goto error;
        if (put_borrowed(d, k_hep_dst, args[5]) < 0) goto error;
    }
    if (put(d, k_version, PyLong_FromLong(3)) < 0) goto error;
    PyObject *ts = PyLong_FromUnsignedLong(fixed[SLOT_TS_SEC]);
    if (ts == NULL) goto error;
    PyObject *us = PyLong_FromUnsignedLong(fixed[SLOT_TS_USEC]);
    if (us == NULL) { Py_DECREF(ts); goto error; }
    if (put_borrowed(d, k_ts_sec, ts) < 0 || put_borrowed(d, k_ts_usec, us) < 0) {
        Py_DECREF(ts); Py_DECREF(us); goto error;
    }
    /* time: the cached ISO prefix of the second, or format_time() to fill the cache */
    PyObject *pre = PyDict_GetItemWithError(c_seconds, ts);
    PyObject *when;
    if (pre != NULL && PyUnicode_Check(pre)) {
        Py_ssize_t pn;
        const char *ps = PyUnicode_AsUTF8AndSize(pre, &pn);
        if (ps == NULL || pn > 64) { Py_DECREF(ts); Py_DECREF(us); goto error; }
        char buf[96];
        memcpy(buf, ps, (size_t)pn);
        unsigned long u = fixed[SLOT_TS_USEC];
        buf[pn] = '.';
        for (int i = 6; i >= 1; i--) { buf[pn + i] = (char)('0' + u % 10); u /= 10; }
        buf[pn + 7] = 'Z';
        when = PyUnicode_FromStringAndSize(buf, pn + 8);
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(ts); Py_DECREF(us); goto error;
    }
    else {
        when = PyObject_CallFunctionObjArgs(c_format_time, ts, us, NULL);
    }
    Py_DECREF(ts);
    Py_DECREF(us);
    if (put(d, k_time, when) < 0) goto error;
    /* family: FAMILY_NAMES.get(fam, fam) */
    PyObject *fam = PyLong_FromUnsignedLong(fixed[SLOT_FAMILY]);
    if (fam == NULL) goto error;
    tmp = PyDict_GetItemWithError(c_families, fam);
    if (tmp == NULL && PyErr_Occurred()) { Py_DECREF(fam); goto error; }
    if (tmp != NULL) { Py_INCREF(tmp); Py_DECREF(fam); fam = tmp; }
    if (put(d, k_family, fam) < 0) goto error;
    if (put(d, k_ip_proto, PyLong_FromUnsignedLong(fixed[SLOT_IP_PROTO])) < 0) goto error;
    if (put(d, k_src_ip, src_len == 4 ? ip4_str(src)
            : PyObject_CallFunction(c_ip6_text, "y#", (const char *)src, (Py_ssize_t)16)) < 0)
        goto error;
    if (put(d, k_src_port, PyLong_FromUnsignedLong(fixed[SLOT_SRC_PORT])) < 0) goto error;
    if (put(d, k_dst_ip, dst_len == 4 ? ip4_str(dst)
            : PyObject_CallFunction(c_ip6_text, "y#", (const char *)dst, (Py_ssize_t)16)) < 0)
        goto error;
    if (put(d, k_dst_port, PyLong_FromUnsignedLong(fixed[SLOT_DST_PORT])) < 0) goto error;
    PyObject *pt = PyLong_FromUnsignedLong(fixed[SLOT_PROTO_TYPE]);
    if (pt == NULL) goto error;
    if (put_borrowed(d, k_proto_type, pt) < 0) { Py_DECREF(pt); goto error; }
    /* proto: PROTO_TYPES.get(pt) or str(pt) */
    tmp = PyDict_GetItemWithError(c_protos, pt);
    if (tmp == NULL && PyErr_Occurred()) { Py_DECREF(pt); goto error; }
    int truthy = tmp != NULL ? PyObject_IsTrue(tmp) : 0;
    if (truthy < 0) { Py_DECREF(pt); goto error; }
    if (truthy) {
        Py_INCREF(tmp);
    }
    else {
        tmp = PyObject_Str(pt);
    }
    Py_DECREF(pt);
    if (put(d, k_proto, tmp) < 0) goto error;
    if (put(d, k_capture_id, PyLong_FromUnsignedLong(fixed[SLOT_CAPTURE_ID])) < 0) goto error;
    if (put_borrowed(d, k_node_name, tv[3] ? tv[3] : Py_None) < 0) goto error;
    if (put_borrowed(d, k_auth_key, tv[1] ? tv[1] : Py_None) < 0) goto error;
    if (put_borrowed(d, k_correlation_id, tv[2] ? tv[2] : Py_None) < 0) goto error;
    if (tv[4] != NULL) {
        if (put(d, k_extra_correlation, PyObject_CallFunctionObjArgs(c_pairs, tv[4], NULL)) < 0)
            goto error;
    }
    else if (put_borrowed(d, k_extra_correlation, Py_None) < 0) goto error;
    if (put_borrowed(d, k_extra_correlation_text, tv[4] ? tv[4] : Py_None) < 0) goto error;
    if (put_borrowed(d, k_payload, tv[0] ? tv[0] : Py_None) < 0) goto error;
    PyObject *names = PyList_New(ntypes);
    if (names == NULL) goto error;
    for (int i = 0; i < ntypes; i++) {
        PyObject *nm = c_names[types[i]];
        Py_INCREF(nm);
        PyList_SET_ITEM(names, i, nm);
    }
    if (put(d, k_chunks, names) < 0) goto error;
    if (want_sip && tlen[0] > 0) {
        /* the decode record's "sip": C for a payload starting with an ASCII letter (the
           Python code when C cannot decide), sip_other(text) for anything that may still be
           SIP (OpenSIPS JSON wrapping, a non-ASCII first character), nothing otherwise */
        unsigned char c0 = text[0][0];
        PyObject *info = NULL;
        if ((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z')) {
            /* the text is valid UTF-8 (checked above): C reads every such text */
            struct sipscan sc;
            struct sipvals sv;
            if (sip_scan((const char *)text[0], tlen[0], &sc)) {
                sip_derive(&sc, &sv);
                info = sip_dict(&sv);
            }
            else {
                Py_INCREF(Py_None);
                info = Py_None;
            }
        }
        else if (c0 == '{' || c0 >= 0x80) {
            info = PyObject_CallFunctionObjArgs(c_sip_other, tv[0], NULL);
        }
        if (info != NULL && info != Py_None) {
            if (put(d, k_sip, info) < 0) goto error;
        }
        else if (info == Py_None) {
            Py_DECREF(info);
        }
        else if (PyErr_Occurred()) {
            goto error;
        }
    }
    for (int i = 0; i < 5; i++) Py_XDECREF(tv[i]);
    return d;

error:
    for (int i = 0; i < 5; i++) Py_XDECREF(tv[i]);
    Py_XDECREF(d);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* HEP3 bytes -> the JSON line of its record, byte for byte what orjson writes for the    */
/* hep3_record() dict (OPT_APPEND_NEWLINE), for `decode -f jsonl`                         */
/* ------------------------------------------------------------------------------------ */

/* An output buffer sized up front (jsonl_size) so the appends never check. */
struct jbuf { char *p; Py_ssize_t n; };

static void jraw(struct jbuf *b, const char *s, Py_ssize_t n) { memcpy(b->p + b->n, s, (size_t)n); b->n += n; }
#define JLIT(b, lit) jraw((b), (lit), (Py_ssize_t)(sizeof(lit) - 1))

static void
jint(struct jbuf *b, long long v)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) b->p[b->n++] = '-';
    while (n) b->p[b->n++] = tmp[--n];
}

/* a JSON string as orjson writes it: \" \\ \b \t \n \f \r, other C0 as \u00xx, rest raw */
static void
jstr(struct jbuf *b, const char *s, Py_ssize_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = b->p + b->n;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = hex[c >> 4]; *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->n = o - b->p;
}

/* UTF-8 of a str argument (NULL with no error set: not a str, or not encodable) */
static const char *
utf8_of(PyObject *o, Py_ssize_t *n)
{
    if (!PyUnicode_Check(o)) return NULL;
    const char *s = PyUnicode_AsUTF8AndSize(o, n);
    if (s == NULL) PyErr_Clear();
    return s;
}

static long long last_sec = -1;
static char last_prefix[32];

static PyObject *
hep3_jsonl(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "hep3_jsonl(data, index, frame, transport, src, dst, sip)");
        return NULL;
    }
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "heptool.core._speedups: configure() first");
        return NULL;
    }
    int want_sip = PyObject_IsTrue(args[6]);
    if (want_sip < 0) return NULL;
    PyObject *data = args[0];
    if (!PyBytes_CheckExact(data) || !PyLong_CheckExact(args[1])) Py_RETURN_NONE;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    struct hep3 h;
    if (!parse_hep3(b, n, &h)) Py_RETURN_NONE;
    if (h.have != (1 << NUM_SLOTS) - 1 || h.src == NULL || h.dst == NULL) Py_RETURN_NONE;
    if (h.fixed[SLOT_TS_USEC] >= 1000000) Py_RETURN_NONE;
    if (h.text[4] != NULL) Py_RETURN_NONE;  /* 0x0065 pairs: the dict path parses them */
    for (int i = 0; i < 4; i++)
        if (h.text[i] != NULL && !utf8_valid(h.text[i], h.tlen[i])) Py_RETURN_NONE;

    int overflow = 0;
    long long index = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (overflow || (index == -1 && PyErr_Occurred())) { PyErr_Clear(); Py_RETURN_NONE; }
    long long frame = 0;
    const char *tr = NULL, *hs = NULL, *hd = NULL;
    Py_ssize_t trn = 0, hsn = 0, hdn = 0;
    int head = args[2] != Py_None;
    if (head) {
        if (!PyLong_CheckExact(args[2])) Py_RETURN_NONE;
        frame = PyLong_AsLongLongAndOverflow(args[2], &overflow);
        if (overflow || (frame == -1 && PyErr_Occurred())) { PyErr_Clear(); Py_RETURN_NONE; }
        tr = utf8_of(args[3], &trn);
        hs = utf8_of(args[4], &hsn);
        hd = utf8_of(args[5], &hdn);
        if (tr == NULL || hs == NULL || hd == NULL) Py_RETURN_NONE;
    }

    /* the sip view: decided here when C can, else the dict path decides */
    struct sipvals sv;
    int have_sip = 0;
    if (want_sip && h.text[0] != NULL && h.tlen[0] > 0) {
        unsigned char c0 = h.text[0][0];
        if ((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z')) {
            struct sipscan sc;
            if (sip_scan((const char *)h.text[0], h.tlen[0], &sc)) {
                sip_derive(&sc, &sv);
                have_sip = 1;
            }
        }
        else if (c0 == '{' || c0 >= 0x80) {
            Py_RETURN_NONE;
        }
    }

    /* family and proto names: the registry's tables */
    PyObject *fam = PyLong_FromUnsignedLong(h.fixed[SLOT_FAMILY]);
    if (fam == NULL) return NULL;
    PyObject *famname = PyDict_GetItemWithError(c_families, fam);
    Py_DECREF(fam);
    if (famname == NULL && PyErr_Occurred()) return NULL;
    const char *fs = NULL;
    Py_ssize_t fsn = 0;
    if (famname != NULL) {
        fs = utf8_of(famname, &fsn);
        if (fs == NULL) Py_RETURN_NONE;
    }
    PyObject *pt = PyLong_FromUnsignedLong(h.fixed[SLOT_PROTO_TYPE]);
    if (pt == NULL) return NULL;
    PyObject *ptname = PyDict_GetItemWithError(c_protos, pt);
    Py_DECREF(pt);
    if (ptname == NULL && PyErr_Occurred()) return NULL;
    const char *ps = NULL;
    Py_ssize_t psn = 0;
    if (ptname != NULL) {
        ps = utf8_of(ptname, &psn);  /* "" is falsy: str(pt) then, as in Python */
        if (ps == NULL && !PyUnicode_Check(ptname)) Py_RETURN_NONE;
        if (psn == 0) ps = NULL;
    }
    char ptdigits[8];
    if (ps == NULL) {
        psn = snprintf(ptdigits, sizeof(ptdigits), "%lu", h.fixed[SLOT_PROTO_TYPE]);
        ps = ptdigits;
    }
    /* addresses: IPv6 text from the Python side (one cached formatter for all of heptool) */
    char ip4s[2][16];
    const char *ips[2];
    Py_ssize_t ipn[2];
    PyObject *ip6obj[2] = {NULL, NULL};
    const unsigned char *addr[2] = {h.src, h.dst};
    int alen[2] = {h.src_len, h.dst_len};
    for (int k = 0; k < 2; k++) {
        if (alen[k] == 4) {
            ipn[k] = fmt_ip4(ip4s[k], addr[k]);
            ips[k] = ip4s[k];
        }
        else {
            ip6obj[k] = PyObject_CallFunction(c_ip6_text, "y#", (const char *)addr[k], (Py_ssize_t)16);
            if (ip6obj[k] == NULL) { Py_XDECREF(ip6obj[0]); return NULL; }
            ips[k] = utf8_of(ip6obj[k], &ipn[k]);
            if (ips[k] == NULL) { Py_XDECREF(ip6obj[0]); Py_XDECREF(ip6obj[1]); Py_RETURN_NONE; }
        }
    }
    /* the time: the second's ISO prefix (kept for the next packet of the same second) */
    long long sec = (long long)h.fixed[SLOT_TS_SEC];
    if (sec != last_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL) { Py_XDECREF(ip6obj[0]); Py_XDECREF(ip6obj[1]); Py_RETURN_NONE; }
        snprintf(last_prefix, sizeof(last_prefix), "%04d-%02d-%02dT%02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        last_sec = sec;
    }

    /* every string is escaped to at most 6 bytes a byte; the rest is bounded by the keys */
    Py_ssize_t cap = 2048 + 6 * (n + trn + hsn + hdn + fsn + psn + ipn[0] + ipn[1]);
    if (have_sip) cap += 6 * h.tlen[0];
    for (int i = 0; i < h.ntypes; i++) {
        Py_ssize_t nn;
        if (utf8_of(c_names[h.types[i]], &nn) == NULL) { cap = -1; break; }
        cap += 6 * nn + 4;
    }
    if (cap < 0) { Py_XDECREF(ip6obj[0]); Py_XDECREF(ip6obj[1]); Py_RETURN_NONE; }
    PyObject *out = PyBytes_FromStringAndSize(NULL, cap);
    if (out == NULL) { Py_XDECREF(ip6obj[0]); Py_XDECREF(ip6obj[1]); return NULL; }
    struct jbuf j = {PyBytes_AS_STRING(out), 0};
    JLIT(&j, "{\"index\":"); jint(&j, index);
    if (head) {
        JLIT(&j, ",\"frame\":"); jint(&j, frame);
        JLIT(&j, ",\"hep_transport\":"); jstr(&j, tr, trn);
        JLIT(&j, ",\"hep_src\":"); jstr(&j, hs, hsn);
        JLIT(&j, ",\"hep_dst\":"); jstr(&j, hd, hdn);
    }
    JLIT(&j, ",\"version\":3,\"ts_sec\":"); jint(&j, sec);
    JLIT(&j, ",\"ts_usec\":"); jint(&j, (long long)h.fixed[SLOT_TS_USEC]);
    {
        char tbuf[48];
        int tn = snprintf(tbuf, sizeof(tbuf), "%s.%06luZ", last_prefix, h.fixed[SLOT_TS_USEC]);
        JLIT(&j, ",\"time\":"); jstr(&j, tbuf, tn);
    }
    JLIT(&j, ",\"family\":");
    if (fs != NULL) jstr(&j, fs, fsn); else jint(&j, (long long)h.fixed[SLOT_FAMILY]);
    JLIT(&j, ",\"ip_proto\":"); jint(&j, (long long)h.fixed[SLOT_IP_PROTO]);
    JLIT(&j, ",\"src_ip\":"); jstr(&j, ips[0], ipn[0]);
    JLIT(&j, ",\"src_port\":"); jint(&j, (long long)h.fixed[SLOT_SRC_PORT]);
    JLIT(&j, ",\"dst_ip\":"); jstr(&j, ips[1], ipn[1]);
    JLIT(&j, ",\"dst_port\":"); jint(&j, (long long)h.fixed[SLOT_DST_PORT]);
    JLIT(&j, ",\"proto_type\":"); jint(&j, (long long)h.fixed[SLOT_PROTO_TYPE]);
    JLIT(&j, ",\"proto\":"); jstr(&j, ps, psn);
    JLIT(&j, ",\"capture_id\":"); jint(&j, (long long)h.fixed[SLOT_CAPTURE_ID]);
    static const int order[3] = {3, 1, 2};  /* node_name, auth_key, correlation_id */
    static const char *const keys[3] = {",\"node_name\":", ",\"auth_key\":", ",\"correlation_id\":"};
    for (int i = 0; i < 3; i++) {
        jraw(&j, keys[i], (Py_ssize_t)strlen(keys[i]));
        if (h.text[order[i]] != NULL) jstr(&j, (const char *)h.text[order[i]], h.tlen[order[i]]);
        else JLIT(&j, "null");
    }
    JLIT(&j, ",\"extra_correlation\":null,\"extra_correlation_text\":null,\"payload\":");
    if (h.text[0] != NULL) jstr(&j, (const char *)h.text[0], h.tlen[0]); else JLIT(&j, "null");
    JLIT(&j, ",\"chunks\":[");
    for (int i = 0; i < h.ntypes; i++) {
        Py_ssize_t nn;
        const char *nm = utf8_of(c_names[h.types[i]], &nn);
        if (i) JLIT(&j, ",");
        jstr(&j, nm, nn);
    }
    JLIT(&j, "]");
    if (have_sip) {
        if (sv.status) {
            JLIT(&j, ",\"sip\":{\"status\":"); jint(&j, sv.status);
            JLIT(&j, ",\"reason\":"); jstr(&j, sv.a, sv.alen);
        }
        else {
            JLIT(&j, ",\"sip\":{\"method\":"); jstr(&j, sv.a, sv.alen);
            JLIT(&j, ",\"ruri\":"); jstr(&j, sv.b, sv.blen);
        }
        if (sv.call) { JLIT(&j, ",\"call_id\":"); jstr(&j, sv.call, sv.calln); }
        if (sv.has_cseq) { JLIT(&j, ",\"cseq\":"); jint(&j, sv.cseq); }
        if (sv.cm) { JLIT(&j, ",\"cseq_method\":"); jstr(&j, sv.cm, sv.cmn); }
        if (sv.ft) { JLIT(&j, ",\"from_tag\":"); jstr(&j, sv.ft, sv.ftn); }
        if (sv.tt) { JLIT(&j, ",\"to_tag\":"); jstr(&j, sv.tt, sv.ttn); }
        if (sv.x) { JLIT(&j, ",\"x_cid\":"); jstr(&j, sv.x, sv.xn); }
        JLIT(&j, "}");
    }
    JLIT(&j, "}\n");
    Py_XDECREF(ip6obj[0]);
    Py_XDECREF(ip6obj[1]);
    if (_PyBytes_Resize(&out, j.n) < 0) return NULL;
    return out;
}

/* decode()'s fast path: the values of a plain HEP3 packet, in HepMessage slot order */
static PyObject *
long_or_none(int have, unsigned long v)
{
    if (!have) Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(v);
}

static PyObject *
ip_or_none(const unsigned char *ip, int len)
{
    if (ip == NULL) Py_RETURN_NONE;
    if (len == 4) return ip4_str(ip);
    return PyObject_CallFunction(c_ip6_text, "y#", (const char *)ip, (Py_ssize_t)16);
}

static PyObject *
hep3_fields(PyObject *self, PyObject *data)
{
    (void)self;
    if (!PyBytes_CheckExact(data)) Py_RETURN_NONE;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    struct hep3 h;
    if (!parse_hep3(b, n, &h)) Py_RETURN_NONE;
    if (((h.src && h.src_len == 16) || (h.dst && h.dst_len == 16)) && c_ip6_text == NULL)
        Py_RETURN_NONE;  /* not configured yet: the Python decoder formats IPv6 */
    PyObject *t = PyTuple_New(16);
    if (t == NULL) return NULL;
    PyObject *v;
    /* family, ip_proto, src_ip, dst_ip, src_port, dst_port, ts_sec, ts_usec, proto_type,
       capture_id, auth_key, node_name, correlation_id, extra_correlation, payload, layout */
#define SET(i, expr) if ((v = (expr)) == NULL) goto error; PyTuple_SET_ITEM(t, i, v);
    SET(0, long_or_none(h.have & (1 << SLOT_FAMILY), h.fixed[SLOT_FAMILY]));
    SET(1, long_or_none(h.have & (1 << SLOT_IP_PROTO), h.fixed[SLOT_IP_PROTO]));
    SET(2, ip_or_none(h.src, h.src_len));
    SET(3, ip_or_none(h.dst, h.dst_len));
    SET(4, long_or_none(h.have & (1 << SLOT_SRC_PORT), h.fixed[SLOT_SRC_PORT]));
    SET(5, long_or_none(h.have & (1 << SLOT_DST_PORT), h.fixed[SLOT_DST_PORT]));
    SET(6, long_or_none(h.have & (1 << SLOT_TS_SEC), h.fixed[SLOT_TS_SEC]));
    SET(7, long_or_none(h.have & (1 << SLOT_TS_USEC), h.fixed[SLOT_TS_USEC]));
    SET(8, long_or_none(h.have & (1 << SLOT_PROTO_TYPE), h.fixed[SLOT_PROTO_TYPE]));
    SET(9, long_or_none(h.have & (1 << SLOT_CAPTURE_ID), h.fixed[SLOT_CAPTURE_ID]));
    static const int text_at[4] = {1, 3, 2, 4};  /* auth, node, corr, extra -> h.text index */
    for (int i = 0; i < 4; i++) {
        int ti = text_at[i];
        if (h.text[ti] == NULL) {
            Py_INCREF(Py_None);
            v = Py_None;
        }
        else {
            v = PyUnicode_DecodeUTF8((const char *)h.text[ti], h.tlen[ti], NULL);
            if (v == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    PyErr_Clear();
                    Py_DECREF(t);
                    Py_RETURN_NONE;  /* kept raw by the Python decoder */
                }
                goto error;
            }
        }
        PyTuple_SET_ITEM(t, 10 + i, v);
    }
    if (h.text[0] == NULL) {
        Py_INCREF(Py_None);
        v = Py_None;
    }
    else {
        v = PyBytes_FromStringAndSize((const char *)h.text[0], h.tlen[0]);
        if (v == NULL) goto error;
    }
    PyTuple_SET_ITEM(t, 14, v);
    PyObject *layout = PyTuple_New(h.ntypes);
    if (layout == NULL) goto error;
    for (int i = 0; i < h.ntypes; i++) {
        PyObject *ty = PyLong_FromLong(h.types[i]);
        if (ty == NULL) { Py_DECREF(layout); goto error; }
        PyTuple_SET_ITEM(layout, i, ty);
    }
    PyTuple_SET_ITEM(t, 15, layout);
#undef SET
    return t;
error:
    Py_DECREF(t);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* One captured frame: Ethernet / IPv4 / UDP carrying HEP3 (heptool.capture.pcap's fused  */
/* fast path; the frame-level code lives there, this is the same checks in C)             */
/* ------------------------------------------------------------------------------------ */

/* "ip:port" text for an IPv4 address and port, cached in eps under (ip << 16 | port) */
static PyObject *
endpoint(PyObject *eps, const unsigned char *ip, unsigned port)
{
    unsigned long long k = ((unsigned long long)be(ip, 4) << 16) | port;
    PyObject *key = PyLong_FromUnsignedLongLong(k);
    if (key == NULL) return NULL;
    PyObject *v = PyDict_GetItemWithError(eps, key);
    if (v != NULL) {
        Py_DECREF(key);
        Py_INCREF(v);
        return v;
    }
    if (PyErr_Occurred()) { Py_DECREF(key); return NULL; }
    if (PyDict_GET_SIZE(eps) > 65536) PyDict_Clear(eps);
    char buf[24];
    int n = fmt_ip4(buf, ip);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, ":%u", port);
    v = PyUnicode_FromStringAndSize(buf, n);
    if (v == NULL || PyDict_SetItem(eps, key, v) < 0) {
        Py_DECREF(key);
        Py_XDECREF(v);
        return NULL;
    }
    Py_DECREF(key);
    return v;
}

static PyObject *
udp4_hep(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "udp4_hep(frame: bytes, eps: dict, port: int | None)");
        return NULL;
    }
    PyObject *frame = args[0];
    if (!PyBytes_CheckExact(frame)) Py_RETURN_NONE;
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(frame);
    Py_ssize_t n = PyBytes_GET_SIZE(frame);
    if (n < 42 || d[12] != 8 || d[13] != 0 || d[14] != 0x45 || d[23] != 17 ||
        (d[20] & 0x3F) || d[21])
        Py_RETURN_NONE;
    Py_ssize_t end = 14 + (Py_ssize_t)be(d + 16, 2);
    if (end < 42 || end > n) Py_RETURN_NONE;
    unsigned sport = (unsigned)be(d + 34, 2), dport = (unsigned)be(d + 36, 2);
    Py_ssize_t ulen = (Py_ssize_t)be(d + 38, 2);
    if (ulen < 8 || ulen > end - 34) Py_RETURN_NONE;
    if (args[2] != Py_None) {
        long port = PyLong_AsLong(args[2]);
        if (port == -1 && PyErr_Occurred()) {  /* not a small int: the Python code decides */
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        if ((long)sport != port && (long)dport != port) return PyLong_FromLong(0);
    }
    if (ulen < 24) Py_RETURN_NONE;
    const unsigned char *pl = d + 42;
    if (!(memcmp(pl, "HEP3", 4) == 0 || memcmp(pl, "EEP1", 4) == 0 || memcmp(pl, "EEP3", 4) == 0))
        Py_RETURN_NONE;
    PyObject *src = endpoint(args[1], d + 26, sport);
    if (src == NULL) return NULL;
    PyObject *dst = endpoint(args[1], d + 30, dport);
    if (dst == NULL) { Py_DECREF(src); return NULL; }
    PyObject *payload = PyBytes_FromStringAndSize((const char *)pl, ulen - 8);
    if (payload == NULL) { Py_DECREF(src); Py_DECREF(dst); return NULL; }
    PyObject *t = PyTuple_New(3);
    if (t == NULL) { Py_DECREF(src); Py_DECREF(dst); Py_DECREF(payload); return NULL; }
    PyTuple_SET_ITEM(t, 0, src);
    PyTuple_SET_ITEM(t, 1, dst);
    PyTuple_SET_ITEM(t, 2, payload);
    return t;
}

/* ------------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"hep3_jsonl", (PyCFunction)(void (*)(void))hep3_jsonl, METH_FASTCALL,
     "hep3_jsonl(data, index, frame, transport, src, dst, sip) -> bytes | None: the JSON "
     "line (orjson's bytes) of hep3_record()'s dict, None when that dict must be built."},
    {"hep3_fields", hep3_fields, METH_O,
     "hep3_fields(data) -> tuple | None: the HepMessage values (family .. payload, then the "
     "layout) of a plain HEP3 packet; None when the Python decoder must do it."},
    {"udp4_hep", (PyCFunction)(void (*)(void))udp4_hep, METH_FASTCALL,
     "udp4_hep(frame, eps, port) -> (src, dst, payload) | 0 | None: an Ethernet/IPv4/UDP "
     "frame carrying HEP3 magic (0: not on port; None: anything else, for the Python code)."},
    {"configure", configure, METH_VARARGS,
     "configure(families, protos, seconds, format_time, ip6_text, pairs, names): the tables "
     "hep3_record uses (heptool.core.record calls it once)."},
    {"hep3_record", (PyCFunction)(void (*)(void))hep3_record, METH_FASTCALL,
     "hep3_record(data, index, frame, transport, src, dst[, sip]) -> dict | None: the decode "
     "record of a plain common HEP3 packet (with its 'sip' view when sip is true), None when "
     "the Python decoder must do it."},
    {"sip_ids", sip_ids, METH_O,
     "sip_ids(payload: bytes) -> (call_id, label, x_cid) | None: heptool.sip.ids.sip_ids "
     "for SIP bytes and OpenSIPS's plain JSON wrapping, None when the Python code must decide."},
    {"sip_summary", sip_summary, METH_O,
     "sip_summary(text) -> dict | None: sip_text_info(text); None also for text that is not "
     "SIP or has lone surrogates (the Python code decides)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "heptool.core._speedups",
    "Optional C versions of heptool's per-packet hot spots (Python is the reference).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#define KEY(var, text)                                   \
    if ((var = PyUnicode_InternFromString(text)) == NULL) \
        return NULL;
    KEY(k_method, "method");
    KEY(k_ruri, "ruri");
    KEY(k_status, "status");
    KEY(k_reason, "reason");
    KEY(k_call_id, "call_id");
    KEY(k_cseq, "cseq");
    KEY(k_cseq_method, "cseq_method");
    KEY(k_from_tag, "from_tag");
    KEY(k_to_tag, "to_tag");
    KEY(k_x_cid, "x_cid");
    KEY(k_index, "index");
    KEY(k_frame, "frame");
    KEY(k_hep_transport, "hep_transport");
    KEY(k_hep_src, "hep_src");
    KEY(k_hep_dst, "hep_dst");
    KEY(k_version, "version");
    KEY(k_ts_sec, "ts_sec");
    KEY(k_ts_usec, "ts_usec");
    KEY(k_time, "time");
    KEY(k_family, "family");
    KEY(k_ip_proto, "ip_proto");
    KEY(k_src_ip, "src_ip");
    KEY(k_src_port, "src_port");
    KEY(k_dst_ip, "dst_ip");
    KEY(k_dst_port, "dst_port");
    KEY(k_proto_type, "proto_type");
    KEY(k_proto, "proto");
    KEY(k_capture_id, "capture_id");
    KEY(k_node_name, "node_name");
    KEY(k_auth_key, "auth_key");
    KEY(k_correlation_id, "correlation_id");
    KEY(k_extra_correlation, "extra_correlation");
    KEY(k_extra_correlation_text, "extra_correlation_text");
    KEY(k_payload, "payload");
    KEY(k_chunks, "chunks");
    KEY(k_sip, "sip");
#undef KEY
    return PyModule_Create(&module);
}
