// Runs the C++ step functions on a user's own BaseBackend subclass: the state of one key is
// read with backend.get(), stepped, and written back with backend.set(..., ttl). Atomic
// within this process (one lock per backend object); across processes only if the user's
// store is not shared — documented on BaseBackend.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "convert.hpp"
#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/error.hpp"
#include "ratelimiter/store/operation.hpp"

namespace ratelimiter::binding {

class PythonBackendStore {
public:
    explicit PythonBackendStore(py::object backend) : backend_(std::move(backend)) {}

    // Called with the GIL held.
    template <class Algo>
    Decision apply(std::string_view key, double now, std::int64_t cost,
                   const typename Algo::Params& params, Operation op) {
        const std::string storage_key = storage_key_for<Algo>(key);
        Lock lock(mutex_);
        py::object stored = backend_.attr("get")(storage_key);
        typename Algo::State state = Algo::fresh(now, params);
        if (!stored.is_none()) {
            std::vector<double> values;
            try {
                values = stored.cast<std::vector<double>>();
            } catch (const py::cast_error&) {
                throw BackendError("corrupt rate-limit state at " + storage_key);
            }
            if (!Algo::decode(values.data(), values.size(), state)) {
                throw BackendError("corrupt rate-limit state at " + storage_key);
            }
        }
        if (op == Operation::peek) return Algo::peek(state, now, params);
        // A sliding log's clock-glitch re-base is kept even when the step rejects (else a
        // full key would stay locked until real time catches up): write it back then too.
        bool rebased = false;
        if constexpr (Algo::id == AlgorithmId::sliding_window) rebased = Algo::rebase(state, now);
        Decision d = Algo::step(state, now, cost, params);
        if (d.allowed || rebased) {
            std::vector<double> encoded;
            Algo::encode(state, encoded);
            // Clamped before the integer conversion (a NaN or out-of-range double cast to an
            // integer is undefined); an unknowable TTL keeps the state rather than dropping it.
            const double ttl = std::ceil(Algo::fresh_at(state, params) - now);
            const double bounded = std::isnan(ttl) ? 1e15 : std::clamp(ttl, 1.0, 1e15);
            py::list value = py::cast(encoded);
            backend_.attr("set")(storage_key, value, static_cast<long long>(bounded));
        }
        return d;
    }

    template <class Algo>
    bool erase(std::string_view key) {
        const std::string storage_key = storage_key_for<Algo>(key);
        Lock lock(mutex_);
        backend_.attr("delete")(storage_key);
        return true;
    }

    const py::object& backend() const { return backend_; }

private:
    template <class Algo>
    static std::string storage_key_for(std::string_view key) {
        std::string out(Algo::name);
        out += ':';
        out.append(key.data(), key.size());
        return out;
    }

    // Waits for the mutex without holding the GIL (another thread holding the mutex may need
    // the GIL to finish its backend call), then holds both.
    struct Lock {
        explicit Lock(std::mutex& m) : mutex(m) {
            py::gil_scoped_release release;
            mutex.lock();
        }
        ~Lock() { mutex.unlock(); }
        std::mutex& mutex;
    };

    py::object backend_;
    std::mutex mutex_;
};

}  // namespace ratelimiter::binding
