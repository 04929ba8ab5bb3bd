/*
 * db.c: client locations from a MaxMind DB file of a City kind; the only code that calls
 * libmaxminddb (MMDB_*).
 *
 * The file is mapped (MMDB_MODE_MMAP) and only read after MMDB_open returns, which libmaxminddb
 * documents as safe for lookups from any number of threads. A lookup is MMDB_lookup_sockaddr
 * (no text parsing: the control plane already holds the address as bytes) and one
 * MMDB_aget_value for each of location.latitude and location.longitude; nothing is allocated.
 * libmaxminddb checks the search tree's pointers and the data section's bounds as it reads, so a
 * damaged file gives an error code, which becomes TMT_ECORRUPT, never a read outside the map.
 */
#include "geo_int.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <maxminddb.h>

#include "tmt/err.h"

struct tmt_geo_db {
    unsigned magic;
    MMDB_s mmdb;
};

static const char *const lat_path[] = {"location", "latitude", NULL};
static const char *const lon_path[] = {"location", "longitude", NULL};

static bool city_kind(const char *type)
{
    return type != NULL && (strstr(type, "City") != NULL || strstr(type, "Enterprise") != NULL);
}

struct tmt_geo_db *tmt_geo_db_open(const char *path, struct tmt_err *err)
{
    tmt_err_clear(err);
    struct tmt_geo_db *db = tmt_xcalloc(1, sizeof(*db));
    db->magic = GEO_DB_MAGIC;
    errno = 0;
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
    if (rc != MMDB_SUCCESS) {
        int e = errno;
        if (rc == MMDB_IO_ERROR && e == EINVAL) /* mmap of an empty file */
            tmt_err_set(err, TMT_ECORRUPT, "%s: not a valid MaxMind DB file: empty", path);
        else if (rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR)
            tmt_err_set_errno(err, TMT_EIO, e != 0 ? e : EIO, "%s: %s", path, MMDB_strerror(rc));
        else if (rc == MMDB_OUT_OF_MEMORY_ERROR)
            tmt_err_set(err, TMT_ELIMIT, "%s: %s", path, MMDB_strerror(rc));
        else
            tmt_err_set(err, TMT_ECORRUPT, "%s: not a valid MaxMind DB file: %s", path,
                        MMDB_strerror(rc));
        /* MMDB_open cleans up after itself on failure. */
        free(db);
        return NULL;
    }
    const char *type = db->mmdb.metadata.database_type;
    if (!city_kind(type)) {
        tmt_err_set(err, TMT_EINVAL,
                    "%s: database type \"%.64s\" has no locations (want a City "
                    "database such as GeoLite2-City)",
                    path, type != NULL ? type : "");
        MMDB_close(&db->mmdb);
        free(db);
        return NULL;
    }
    return db;
}

void tmt_geo_db_close(struct tmt_geo_db **dbp)
{
    struct tmt_geo_db *db = *dbp;
    if (db == NULL)
        return;
    TMT_CHECK_OBJ(db, GEO_DB_MAGIC);
    MMDB_close(&db->mmdb);
    db->magic = 0;
    free(db);
    *dbp = NULL;
}

const char *tmt_geo_db_type(const struct tmt_geo_db *db)
{
    TMT_CHECK_OBJ(db, GEO_DB_MAGIC);
    return db->mmdb.metadata.database_type != NULL ? db->mmdb.metadata.database_type : "";
}

unsigned long long tmt_geo_db_build_epoch(const struct tmt_geo_db *db)
{
    TMT_CHECK_OBJ(db, GEO_DB_MAGIC);
    return (unsigned long long)db->mmdb.metadata.build_epoch;
}

/* 1 with *v, 0 when the path is absent, TMT_ECORRUPT when the data is damaged or not a number. */
static int get_double(MMDB_entry_s *entry, const char *const *path, double *v)
{
    MMDB_entry_data_s d;
    int rc = MMDB_aget_value(entry, &d, path);
    if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
        return 0; /* e.g. "location" is not a map: no location */
    if (rc != MMDB_SUCCESS)
        return TMT_ECORRUPT;
    if (!d.has_data)
        return 0;
    switch (d.type) {
    case MMDB_DATA_TYPE_DOUBLE:
        *v = d.double_value;
        return 1;
    case MMDB_DATA_TYPE_FLOAT:
        *v = d.float_value;
        return 1;
    default:
        return TMT_ECORRUPT;
    }
}

int tmt_geo_db_locate(const struct tmt_geo_db *db, const struct tmt_geo_addr *a, double *lat,
                      double *lon)
{
    if (db == NULL)
        return 0;
    TMT_CHECK_OBJ(db, GEO_DB_MAGIC);
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } sa;
    memset(&sa, 0, sizeof(sa));
    if (a == NULL)
        return 0;
    if (a->family == AF_INET) {
        sa.in4.sin_family = AF_INET;
        memcpy(&sa.in4.sin_addr, a->b, 4);
    } else if (a->family == AF_INET6) {
        sa.in6.sin6_family = AF_INET6;
        memcpy(&sa.in6.sin6_addr, a->b, 16);
    } else {
        return 0;
    }
    int mmdb_err = MMDB_SUCCESS;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&db->mmdb, &sa.sa, &mmdb_err);
    if (mmdb_err == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
        return 0;
    if (mmdb_err != MMDB_SUCCESS)
        return TMT_ECORRUPT;
    if (!res.found_entry)
        return 0;
    double la = 0, lo = 0;
    int r1 = get_double(&res.entry, lat_path, &la);
    if (r1 <= 0)
        return r1;
    int r2 = get_double(&res.entry, lon_path, &lo);
    if (r2 <= 0)
        return r2;
    if (!(la >= -90 && la <= 90 && lo >= -180 && lo <= 180))
        return TMT_ECORRUPT;
    *lat = la;
    *lon = lo;
    return 1;
}
