/*
 * asset.c: asset.json, the description of an asset's renditions (schema in docs/asset-json.md).
 *
 * Validation is strict: unknown keys, wrong types, out-of-range numbers, duplicate ids and file
 * names that could leave the asset folder are errors, each reported with the file and the JSON
 * path of the field. Nothing here opens the mezzanines; the index builder compares them with
 * what this file says.
 */
#include "pack_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ASSET_JSON_MAX (1u << 20)

bool tmt_pack_id_valid(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= TMT_PACK_ID_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* A file name inside the asset folder: no path, no leading dot. */
static bool file_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PACK_FILE_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool charset_valid(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c) != NULL))
            return false;
    }
    return true;
}

/* What asset.json must already satisfy; also checked on index blobs. */
int pack_asset_check_desc(const struct pack_rendition_desc *d, const char *where,
                          struct tmt_err *err)
{
    if (!tmt_pack_id_valid(d->id))
        return tmt_err_set(err, TMT_EINVAL, "%s: id: not [A-Za-z0-9_-]{1,64}", where);
    if (!file_valid(d->file))
        return tmt_err_set(err, TMT_EINVAL, "%s: file: not a file name in the asset folder", where);
    if (d->codecs[0] != '\0' && !charset_valid(d->codecs, PACK_CODECS_MAX, "."))
        return tmt_err_set(err, TMT_EINVAL, "%s: codecs: not a codecs string", where);
    if (d->lang[0] != '\0' && !charset_valid(d->lang, PACK_LANG_MAX, "-"))
        return tmt_err_set(err, TMT_EINVAL, "%s: language: not a language tag", where);
    if (d->name[0] != '\0' && !charset_valid(d->name, PACK_NAME_MAX, " _-.()"))
        return tmt_err_set(err, TMT_EINVAL, "%s: name: use letters, digits, space and _-.()",
                           where);
    if (d->bitrate < 1000 || d->bitrate > 1000000000)
        return tmt_err_set(err, TMT_EINVAL, "%s: bitrate: must be in [1000, 1000000000]", where);
    if (d->kind == TMT_PACK_VIDEO) {
        if (d->width < 16 || d->width > 8192 || d->height < 16 || d->height > 8192)
            return tmt_err_set(err, TMT_EINVAL, "%s: width/height: must be in [16, 8192]", where);
        if (d->fps_num == 0 || d->fps_den == 0 || d->fps_num > 240u * d->fps_den ||
            (uint64_t)d->fps_num * 10 < d->fps_den)
            return tmt_err_set(err, TMT_EINVAL, "%s: frame_rate: must be in [0.1, 240]", where);
        if (d->sample_rate != 0 || d->channels != 0 || d->lang[0] != '\0')
            return tmt_err_set(err, TMT_EINVAL, "%s: audio fields on a video rendition", where);
    } else if (d->kind == TMT_PACK_AUDIO) {
        if (d->sample_rate != 0 && (d->sample_rate < 8000 || d->sample_rate > 96000))
            return tmt_err_set(err, TMT_EINVAL, "%s: sample_rate: must be in [8000, 96000]", where);
        if (d->channels > 8)
            return tmt_err_set(err, TMT_EINVAL, "%s: channels: must be in [1, 8]", where);
        if (d->width != 0 || d->height != 0 || d->fps_num != 0)
            return tmt_err_set(err, TMT_EINVAL, "%s: video fields on an audio rendition", where);
    } else {
        return tmt_err_set(err, TMT_EINVAL, "%s: type: must be \"video\" or \"audio\"", where);
    }
    return 0;
}

static int get_string(json_t *o, const char *key, bool required, char *dst, size_t cap,
                      const char *where, struct tmt_err *err)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        if (required)
            return tmt_err_set(err, TMT_EINVAL, "%s.%s: missing", where, key);
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v))
        return tmt_err_set(err, TMT_EINVAL, "%s.%s: must be a string", where, key);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n >= cap || strlen(s) != n)
        return tmt_err_set(err, TMT_EINVAL, "%s.%s: must be 1 to %zu characters", where, key,
                           cap - 1);
    memcpy(dst, s, n + 1);
    return 0;
}

static int get_uint(json_t *o, const char *key, bool required, uint64_t lo, uint64_t hi,
                    uint64_t *out, const char *where, struct tmt_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL) {
        if (required)
            return tmt_err_set(err, TMT_EINVAL, "%s.%s: missing", where, key);
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < lo ||
        (uint64_t)json_integer_value(v) > hi)
        return tmt_err_set(err, TMT_EINVAL, "%s.%s: must be an integer in [%llu, %llu]", where, key,
                           (unsigned long long)lo, (unsigned long long)hi);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* 25, 29.97, 23.976, "30000/1001" */
static int get_frame_rate(json_t *o, struct pack_rendition_desc *d, const char *where,
                          struct tmt_err *err)
{
    json_t *v = json_object_get(o, "frame_rate");
    if (v == NULL)
        return tmt_err_set(err, TMT_EINVAL, "%s.frame_rate: missing", where);
    if (json_is_string(v)) {
        unsigned long num, den;
        char tail;
        if (sscanf(json_string_value(v), "%lu/%lu%c", &num, &den, &tail) != 2 || num == 0 ||
            den == 0 || num > 1000000 || den > 1000000)
            return tmt_err_set(err, TMT_EINVAL, "%s.frame_rate: not a fraction like \"30000/1001\"",
                               where);
        d->fps_num = (uint32_t)num;
        d->fps_den = (uint32_t)den;
        return 0;
    }
    if (!json_is_number(v))
        return tmt_err_set(err, TMT_EINVAL, "%s.frame_rate: must be a number or a fraction", where);
    double f = json_number_value(v);
    if (!(f >= 0.1 && f <= 240.0))
        return tmt_err_set(err, TMT_EINVAL, "%s.frame_rate: must be in [0.1, 240]", where);
    double r = round(f);
    double ntsc = round(f * 1.001);
    if (fabs(f - r) < 1e-6) {
        d->fps_num = (uint32_t)r;
        d->fps_den = 1;
    } else if (fabs(f - ntsc * 1000.0 / 1001.0) < 0.005) {
        d->fps_num = (uint32_t)ntsc * 1000;
        d->fps_den = 1001;
    } else {
        d->fps_num = (uint32_t)round(f * 1000.0);
        d->fps_den = 1000;
    }
    return 0;
}

static const char *const VIDEO_KEYS[] = {"id",    "type",   "file",    "codecs",
                                         "width", "height", "bitrate", "frame_rate"};
static const char *const AUDIO_KEYS[] = {"id",          "type",     "file",     "codecs", "bitrate",
                                         "sample_rate", "channels", "language", "name"};

static int check_keys(json_t *o, const char *const *keys, size_t n, const char *where,
                      struct tmt_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(k, keys[i]) == 0;
        if (!known)
            return tmt_err_set(err, TMT_EINVAL, "%s.%s: unknown field", where, k);
    }
    return 0;
}

static int parse_rendition(json_t *o, struct pack_rendition_desc *d, const char *where,
                           struct tmt_err *err)
{
    char type[8];
    uint64_t v;
    int rc;
    memset(d, 0, sizeof(*d));
    if (!json_is_object(o))
        return tmt_err_set(err, TMT_EINVAL, "%s: must be an object", where);
    if ((rc = get_string(o, "type", true, type, sizeof(type), where, err)) != 0)
        return rc;
    if (strcmp(type, "video") == 0)
        d->kind = TMT_PACK_VIDEO;
    else if (strcmp(type, "audio") == 0)
        d->kind = TMT_PACK_AUDIO;
    else
        return tmt_err_set(err, TMT_EINVAL, "%s.type: must be \"video\" or \"audio\"", where);
    if (d->kind == TMT_PACK_VIDEO)
        rc = check_keys(o, VIDEO_KEYS, TMT_ARRAY_LEN(VIDEO_KEYS), where, err);
    else
        rc = check_keys(o, AUDIO_KEYS, TMT_ARRAY_LEN(AUDIO_KEYS), where, err);
    if (rc != 0)
        return rc;
    if ((rc = get_string(o, "id", true, d->id, sizeof(d->id), where, err)) != 0)
        return rc;
    if (!tmt_pack_id_valid(d->id))
        return tmt_err_set(err, TMT_EINVAL, "%s.id: \"%s\" is not [A-Za-z0-9_-]{1,64}", where,
                           d->id);
    if ((rc = get_string(o, "file", true, d->file, sizeof(d->file), where, err)) != 0)
        return rc;
    if (!file_valid(d->file))
        return tmt_err_set(err, TMT_EINVAL,
                           "%s.file: \"%s\" is not a file name inside the asset folder", where,
                           d->file);
    if ((rc = get_string(o, "codecs", false, d->codecs, sizeof(d->codecs), where, err)) != 0)
        return rc;
    if ((rc = get_uint(o, "bitrate", true, 1000, 1000000000, &d->bitrate, where, err)) != 0)
        return rc;
    if (d->kind == TMT_PACK_VIDEO) {
        if ((rc = get_uint(o, "width", true, 16, 8192, &v, where, err)) != 0)
            return rc;
        d->width = (uint32_t)v;
        if ((rc = get_uint(o, "height", true, 16, 8192, &v, where, err)) != 0)
            return rc;
        d->height = (uint32_t)v;
        if ((rc = get_frame_rate(o, d, where, err)) != 0)
            return rc;
    } else {
        if ((rc = get_uint(o, "sample_rate", false, 8000, 96000, &v, where, err)) != 0)
            return rc;
        d->sample_rate = (uint32_t)v;
        if ((rc = get_uint(o, "channels", false, 1, 8, &v, where, err)) != 0)
            return rc;
        d->channels = (uint32_t)v;
        if ((rc = get_string(o, "language", false, d->lang, sizeof(d->lang), where, err)) != 0)
            return rc;
        if ((rc = get_string(o, "name", false, d->name, sizeof(d->name), where, err)) != 0)
            return rc;
    }
    return pack_asset_check_desc(d, where, err);
}

static int parse_root(json_t *root, struct tmt_pack_asset *a, const char *name, struct tmt_err *err)
{
    static const char *const KEYS[] = {"version", "segment_duration", "renditions"};
    uint64_t version;
    int rc;
    if (!json_is_object(root))
        return tmt_err_set(err, TMT_EINVAL, "%s: the top level must be an object", name);
    if ((rc = check_keys(root, KEYS, TMT_ARRAY_LEN(KEYS), name, err)) != 0)
        return rc;
    if ((rc = get_uint(root, "version", true, 1, 1, &version, name, err)) != 0)
        return rc;
    json_t *sd = json_object_get(root, "segment_duration");
    if (sd == NULL)
        return tmt_err_set(err, TMT_EINVAL, "%s.segment_duration: missing", name);
    if (!json_is_number(sd) || !(json_number_value(sd) >= 1.0 && json_number_value(sd) <= 30.0))
        return tmt_err_set(err, TMT_EINVAL,
                           "%s.segment_duration: must be a number of seconds in [1, 30]", name);
    a->seg_ms = (uint32_t)round(json_number_value(sd) * 1000.0);
    json_t *rs = json_object_get(root, "renditions");
    if (rs == NULL)
        return tmt_err_set(err, TMT_EINVAL, "%s.renditions: missing", name);
    if (!json_is_array(rs) || json_array_size(rs) == 0 ||
        json_array_size(rs) > TMT_PACK_MAX_RENDITIONS)
        return tmt_err_set(err, TMT_EINVAL, "%s.renditions: must be an array of 1 to %d objects",
                           name, TMT_PACK_MAX_RENDITIONS);
    unsigned videos = 0, audios = 0;
    for (size_t i = 0; i < json_array_size(rs); i++) {
        char where[4200];
        snprintf(where, sizeof(where), "%.4096s: renditions[%zu]", name, i);
        struct pack_rendition_desc *d = &a->r[i];
        if ((rc = parse_rendition(json_array_get(rs, i), d, where, err)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(a->r[j].id, d->id) == 0)
                return tmt_err_set(err, TMT_EINVAL, "%s.id: \"%s\" is used twice", where, d->id);
        }
        if (d->kind == TMT_PACK_VIDEO)
            videos++;
        else
            audios++;
        a->n = (unsigned)i + 1;
    }
    if (videos == 0)
        return tmt_err_set(err, TMT_EINVAL, "%s.renditions: no video rendition", name);
    /* XXX: several audio renditions (languages) need one group per language in the manifests. */
    if (audios > 1)
        return tmt_err_set(err, TMT_EINVAL, "%s.renditions: more than one audio rendition", name);
    return 0;
}

struct tmt_pack_asset *tmt_pack_asset_parse(const char *json, size_t len, const char *asset_id,
                                            const char *name, struct tmt_err *err)
{
    if (!tmt_pack_id_valid(asset_id)) {
        tmt_err_set(err, TMT_EINVAL, "asset id is not [A-Za-z0-9_-]{1,64}");
        return NULL;
    }
    if (name == NULL)
        name = "asset.json";
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        tmt_err_set(err, TMT_EINVAL, "%s:%d:%d: %s", name, je.line, je.column, je.text);
        return NULL;
    }
    struct tmt_pack_asset *a = tmt_xcalloc(1, sizeof(*a));
    a->magic = PACK_ASSET_MAGIC;
    snprintf(a->id, sizeof(a->id), "%s", asset_id);
    int rc = parse_root(root, a, name, err);
    json_decref(root);
    if (rc != 0)
        tmt_pack_asset_free(&a);
    return a;
}

struct tmt_pack_asset *tmt_pack_asset_load(const char *root, const char *asset_id,
                                           struct tmt_err *err)
{
    if (!tmt_pack_id_valid(asset_id)) {
        tmt_err_set(err, TMT_EINVAL, "asset id is not [A-Za-z0-9_-]{1,64}");
        return NULL;
    }
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s/asset.json", root, asset_id);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        tmt_err_set(err, TMT_EINVAL, "mezzanine root path too long");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        tmt_err_set_errno(err, errno == ENOENT ? TMT_ENOTFOUND : TMT_EIO, errno, "%s", path);
        return NULL;
    }
    char *buf = malloc(ASSET_JSON_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", path);
        return NULL;
    }
    size_t len = fread(buf, 1, ASSET_JSON_MAX + 1, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    struct tmt_pack_asset *a = NULL;
    if (rerr != 0)
        tmt_err_set_errno(err, TMT_EIO, rerr, "%s", path);
    else if (len > ASSET_JSON_MAX)
        tmt_err_set(err, TMT_EINVAL, "%s: larger than %u bytes", path, ASSET_JSON_MAX);
    else
        a = tmt_pack_asset_parse(buf, len, asset_id, path, err);
    free(buf);
    return a;
}

void tmt_pack_asset_free(struct tmt_pack_asset **a)
{
    if (a == NULL || *a == NULL)
        return;
    TMT_CHECK_OBJ(*a, PACK_ASSET_MAGIC);
    (*a)->magic = 0;
    free(*a);
    *a = NULL;
}

unsigned tmt_pack_asset_renditions(const struct tmt_pack_asset *a)
{
    TMT_CHECK_OBJ(a, PACK_ASSET_MAGIC);
    return a->n;
}
