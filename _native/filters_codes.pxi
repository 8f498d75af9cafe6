# Included by filters.pyx (one compilation unit): operator name -> int code, switched on in C by
# length and bytes (no hashing, no dict probe), and the DEF codes the walker and renderers use.

cdef extern from *:
    """
    /* Operator name -> code by length and bytes: no hashing, no dict probe, no allocation. */
    #define DF_IS(lit) (memcmp(s, lit, sizeof(lit) - 1) == 0)
    static int df_field_code(const char *s, Py_ssize_t n) {
        switch (n) {
        case 3:
            if (DF_IS("$eq")) return 1;
            if (DF_IS("$gt")) return 2;
            if (DF_IS("$lt")) return 4;
            if (DF_IS("$ne")) return 6;
            if (DF_IS("$in")) return 7;
            return 0;
        case 4:
            if (DF_IS("$gte")) return 3;
            if (DF_IS("$lte")) return 5;
            if (DF_IS("$nin")) return 8;
            if (DF_IS("$not")) return 18;
            return 0;
        case 5:
            if (DF_IS("$like")) return 11;
            if (DF_IS("$null")) return 10;
            return 0;
        case 6:
            if (DF_IS("$ilike")) return 12;
            if (DF_IS("$regex")) return 13;
            return 0;
        case 7:
            return DF_IS("$exists") ? 9 : 0;
        case 8:
            if (DF_IS("$between")) return 17;
            if (DF_IS("$options")) return 19;
            return 0;
        case 9:
            if (DF_IS("$contains")) return 14;
            if (DF_IS("$endswith")) return 16;
            return 0;
        case 11:
            return DF_IS("$startswith") ? 15 : 0;
        }
        return 0;
    }
    static int df_doc_code(const char *s, Py_ssize_t n) {
        switch (n) {
        case 3: return DF_IS("$or") ? 2 : 0;
        case 4:
            if (DF_IS("$and")) return 1;
            if (DF_IS("$nor")) return 3;
            if (DF_IS("$not")) return 4;
            return 0;
        case 5: return DF_IS("$expr") ? 5 : 0;
        case 6: return DF_IS("$where") ? 5 : 0;
        case 9: return DF_IS("$function") ? 5 : 0;
        case 12: return DF_IS("$accumulator") ? 5 : 0;
        }
        return 0;
    }
    #undef DF_IS
    """
    int df_field_code(const char* s, Py_ssize_t n)
    int df_doc_code(const char* s, Py_ssize_t n)


cdef inline int field_code(str op):
    if not PyUnicode_IS_ASCII(op):
        return 0
    return df_field_code(<const char*>PyUnicode_DATA(op), PyUnicode_GET_LENGTH(op))


cdef inline int doc_code(str key):
    if not PyUnicode_IS_ASCII(key):
        return 0
    return df_doc_code(<const char*>PyUnicode_DATA(key), PyUnicode_GET_LENGTH(key))


# template slots (index into FilterSpec._tpl)
DEF T_LIKE = 0
DEF T_ILIKE = 1
DEF T_REGEX = 2
DEF T_IREGEX = 3
DEF T_JSON_CONTAINS = 4
DEF T_IN_ARRAY = 5
DEF T_NIN_ARRAY = 6
DEF T_IN_JSON = 7

# field operator codes
DEF O_EQ = 1
DEF O_GT = 2
DEF O_GTE = 3
DEF O_LT = 4
DEF O_LTE = 5
DEF O_NE = 6
DEF O_IN = 7
DEF O_NIN = 8
DEF O_EXISTS = 9
DEF O_NULL = 10
DEF O_LIKE = 11
DEF O_ILIKE = 12
DEF O_REGEX = 13
DEF O_CONTAINS = 14
DEF O_STARTSWITH = 15
DEF O_ENDSWITH = 16
DEF O_BETWEEN = 17
DEF O_NOT = 18
DEF O_OPTIONS = 19

# document-level operator codes
DEF D_AND = 1
DEF D_OR = 2
DEF D_NOR = 3
DEF D_NOT = 4
DEF D_REFUSED = 5
