// Limiter<Algo>'s members off the memory store's hot path: the SQLite, Redis and
// Python-backend steps, reset, state, and the asyncio Redis call. Included only by
// store_instances_cold.cpp, which instantiates them in the binding's cold part (-O1, see
// store_instances.hpp): the hot part's `template class Limiter<Algo>` instantiates only the
// members defined in limiter.hpp (build time, issue 8).
#pragma once

#include <string>
#include <vector>

#include "limiter.hpp"
#include "store_instances.hpp"

namespace ratelimiter::binding {

namespace limiter_detail {

// Forgets `key` for Algo on `store`, releasing the GIL for an I/O-bound store.
template <class Algo, class Store>
void erase_on(Store& store, std::string_view key) {
    if constexpr (StoreTraits<Store>::kReleaseGil) {
        py::gil_scoped_release release;
        store.template erase<Algo>(key);
    } else {
        store.template erase<Algo>(key);
    }
}

}  // namespace limiter_detail

template <class Algo>
Decision Limiter<Algo>::run_elsewhere(std::string_view key, double now, std::int64_t cost,
                                      const Params& params, Operation op,
                                      const StepInputOf<Algo>& input) {
    return reported(std::visit(
        [&](auto& store) -> Decision {
            using Store = typename std::decay_t<decltype(store)>::element_type;
            if constexpr (StoreTraits<Store>::kReleaseGil) {
                py::gil_scoped_release release;
                return store->template apply<Algo>(key, now, cost, params, op, input);
            } else {
                return store->template apply<Algo>(key, now, cost, params, op, input);
            }
        },
        store_), now);
}

template <class Algo>
void Limiter<Algo>::decide_many_elsewhere(PyObject* const* items,
                                          const std::vector<std::string_view>& views, double now,
                                          std::int64_t cost, const Params& params, double window,
                                          bool detail, py::list& out) {
    const std::size_t n = views.size();
    const auto put = [&](std::size_t i, const Decision& d) {
        if (detail) {
            put_result(out, i, items[i], params.limit, window, d);
            return;
        }
        PyObject* answer = d.allowed ? Py_True : Py_False;
        Py_INCREF(answer);
        PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), answer);
    };
    if (auto* redis = std::get_if<std::shared_ptr<RedisStore>>(&store_);
        redis != nullptr && n > 1 && !needs_aggregate_load(params)) {
        // Redis: every key's EVALSHA in one pipeline (one round trip per node).
        std::vector<std::string> full(n);
        for (std::size_t i = 0; i < n; ++i) full[i] = full_key(views[i]);
        std::vector<Decision> decisions(n);
        {
            py::gil_scoped_release release;
            (*redis)->template apply_many<Algo>(full, now, cost, params, decisions.data());
        }
        for (std::size_t i = 0; i < n; ++i) put(i, reported(decisions[i], now));
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const Decision d = run(storage_view(views[i]), now, cost, params, Operation::consume,
                               aggregate_.measure(params, now));
        aggregate_.record(d, cost, now);
        put(i, d);
    }
}

template <class Algo>
void Limiter<Algo>::reset(py::handle key) {
    const std::string k = full_key(key_view(key, prefix_.size()));
    std::visit([&](auto& store) { limiter_detail::erase_on<Algo>(*store, k); }, store_);
}

template <class Algo>
std::string Limiter<Algo>::storage_key(py::handle key) const {
    return full_key(key_view(key, prefix_.size()));
}

template <class Algo>
std::vector<double> Limiter<Algo>::state(py::handle key) {
    const std::string k = full_key(key_view(key, prefix_.size()));
    if (auto* memory = std::get_if<std::shared_ptr<MemoryStore>>(&store_)) {
        return (*memory)->template snapshot<Algo>(k);
    }
    return {};
}

template <class Algo>
py::tuple Limiter<Algo>::redis_call(py::handle key, py::handle cost_arg, bool peek,
                                    bool use_server_time, bool binary_reply) {
    const std::int64_t cost = peek ? 1 : to_count(cost_arg, "cost");
    const std::string_view k = key_view(key, prefix_.size());
    const double now = read_clock(clock_ptr());
    double window = 0.0;
    const Params params = current_params(window);
    std::vector<std::string> args;
    RedisStore::append_call_args(args, use_server_time, now, cost,
                                 peek ? Operation::peek : Operation::consume, binary_reply);
    RedisStore::append_step_params<Algo>(args, params, aggregate_.measure(params, now));
    py::list argv;
    for (const std::string& arg : args) argv.append(py::bytes(arg));
    // The last item is what redis_result records in the aggregate load: a peek admits
    // nothing, so it hands back 0 (the script itself was asked about cost 1).
    return py::make_tuple(Algo::name, std::string(full_key(k)), argv, params.limit, window, now,
                          peek ? std::int64_t{0} : cost);
}

template <class Algo>
py::object Limiter<Algo>::redis_result(py::handle key, const std::vector<std::string>& reply,
                                       std::int64_t limit, double window, double now,
                                       std::int64_t cost) {
    const Decision d = reported(RedisStore::parse_reply(Algo::id, reply), now);
    aggregate_.record(d, cost, now);
    return steal(make_result(key.ptr(), limit, window, d, Algo::id));
}

}  // namespace ratelimiter::binding
