// The extension module `ratelimiter._core`. Private: the package re-exports public names.
#include <sqlite3.h>

#include "convert.hpp"
#include "modules.hpp"
#include "ratelimiter/build_info.hpp"
#include "result_object.hpp"

// The binding's hot part includes only pybind11/pytypes.h (see limiter.hpp), whose inline
// error_already_set::what() calls handle::cast<std::string>(), a template that pybind11 defines
// in cast.h. This part includes all of pybind11: one explicit definition here serves both, where
// an implicit one might not be emitted at all (a build without LTO, e.g. with Clang).
template std::string pybind11::handle::cast<std::string>() const;

namespace ratelimiter::binding {

void register_exception_translators() {
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::exception& e) {
            if (!translate_core_exception(e)) throw;
        }
    });
}

}  // namespace ratelimiter::binding

namespace {

// What went into this build (ratelimiter.build_info() documents the keys). The SQLite
// version is the library's own answer at run time, which is what a dynamic link really got.
pybind11::dict build_info() {
    namespace b = ratelimiter::build;
    pybind11::dict info;
    info["hiredis"] = b::kHiredis;
    info["hiredis_linkage"] = b::kHiredisLinkage;
    info["hiredis_version"] = b::kHiredisVersion;
    info["sqlite_version"] = sqlite3_libversion();
    info["sqlite_linkage"] = b::kSqliteLinkage;
    info["compiler"] = b::kCompiler;
    info["build_type"] = b::kBuildType;
    info["cxx_flags"] = b::kCxxFlags;
    return info;
}

// The binding floor for bench/ (bench_core.py's "noop" row): the cheapest call pybind11 can
// make. Kept here, with the module's own functions, rather than beside a store.
void register_noop(pybind11::module_& m) {
    m.def("_noop", [](pybind11::handle, pybind11::handle) {}, pybind11::arg("key"),
          pybind11::arg("cost") = 1);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "smart-ratelimiter C++ core (private; use the ratelimiter package).";
    ratelimiter::binding::register_exception_translators();
    ratelimiter::binding::register_result_type(m.ptr());
    ratelimiter::binding::register_memory_store(m);
    ratelimiter::binding::register_sqlite_store(m);
    ratelimiter::binding::register_redis_store(m);
    ratelimiter::binding::register_limiters(m);
    ratelimiter::binding::register_multi(m);
    register_noop(m);
    m.def("build_info", &build_info,
          "What this build contains: hiredis (and its linkage), SQLite, compiler, flags.");
}
