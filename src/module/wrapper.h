/* The Apache and APR headers the module's bindings are generated from (see build.rs). */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_script.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <ap_regex.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_buckets.h>
#include <apr_portable.h>
#include <util_filter.h>
