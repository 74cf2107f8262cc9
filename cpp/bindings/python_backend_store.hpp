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
#include "ratelimiter/store/apply_step.hpp"
#include "ratelimiter/store/multi.hpp"
#include "ratelimiter/store/operation.hpp"

namespace ratelimiter::binding {

class PythonBackendStore {
public:
    explicit PythonBackendStore(py::object backend) : backend_(std::move(backend)) {}

    // Called with the GIL held. Defined below the class (not inline), so that
    // store_instances.hpp can keep it out of the hot TU.
    template <class Algo>
    Decision apply(std::string_view key, double now, std::int64_t cost,
                   const typename Algo::Params& params, Operation op,
                   const StepInputOf<Algo>& input = {});

    // Several limits of one key (MultiRateLimiter): read all, decide all or nothing, write
    // back, under the one lock of this backend object.
    template <class Algo>
    bool apply_multi(const std::vector<std::string>& keys, const typename Algo::Params* params,
                     const std::int64_t* costs, double now, MultiOp op, Decision* out) {
        std::vector<std::string> storage_keys;
        for (const std::string& key : keys) storage_keys.push_back(storage_key_for<Algo>(key));
        Lock lock(mutex_);
        std::vector<typename Algo::State> states(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            std::vector<double> values;
            const bool present = read(storage_keys[i], values);
            states[i] = load_state<Algo>(present, values.data(),
                                         values.size(), now, params[i],
                                         [&] { throw_corrupt(storage_keys[i]); });
        }
        std::vector<EncodedWrite> writes(keys.size());
        const bool allowed = ratelimiter::apply_multi<Algo>(
            states.data(), params, costs, keys.size(), now, op, out,
            [&](std::size_t i, const typename Algo::State& state, double fresh_at) {
                Algo::encode(state, writes[i].encoded);
                writes[i].fresh_at = fresh_at;
                writes[i].write = true;
            });
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (writes[i].write) write(storage_keys[i], writes[i].encoded, writes[i].fresh_at - now);
        }
        return allowed;
    }

    template <class Algo>
    void erase_multi(const std::vector<std::string>& keys) {
        for (const std::string& key : keys) erase<Algo>(key);
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
    // Reads the stored doubles at `key` into `values`; false when absent (the GIL is held).
    bool read(const std::string& key, std::vector<double>& values) {
        py::object stored = backend_.attr("get")(key);
        if (stored.is_none()) return false;
        try {
            values = stored.cast<std::vector<double>>();
        } catch (const py::cast_error&) {
            throw_corrupt(key);
        }
        return true;
    }

    void write(const std::string& key, const std::vector<double>& encoded, double ttl) {
        // Clamped before the integer conversion (a NaN or out-of-range double cast to an
        // integer is undefined); an unknowable TTL keeps the state rather than dropping it.
        const double whole = std::ceil(ttl);
        const double bounded = std::isnan(whole) ? 1e15 : std::clamp(whole, 1.0, 1e15);
        py::list value = py::cast(encoded);
        backend_.attr("set")(key, value, static_cast<long long>(bounded));
    }

    [[noreturn]] static void throw_corrupt(const std::string& key) {
        throw BackendError("corrupt rate-limit state at " + key);
    }

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

template <class Algo>
Decision PythonBackendStore::apply(std::string_view key, double now, std::int64_t cost,
                                   const typename Algo::Params& params, Operation op,
                                   const StepInputOf<Algo>& input) {
    const std::string storage_key = storage_key_for<Algo>(key);
    Lock lock(mutex_);
    std::vector<double> values;
    const bool present = read(storage_key, values);
    EncodedWrite out;
    const Decision d = apply_encoded_step<Algo>(
        present, values.data(), values.size(), now, cost, params, op, out,
        [&] { throw_corrupt(storage_key); }, input);
    if (out.write) write(storage_key, out.encoded, out.fresh_at - now);
    return d;
}

}  // namespace ratelimiter::binding
