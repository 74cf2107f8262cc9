// The one "apply this step to this key" sequence every store runs (governor's
// measure_and_replace): load (decode, or fresh) → step or peek → on a change, save the state
// with its expiry (Algo::fresh_at). A store supplies only where the state lives: memory keeps
// decoded states in a table, SQLite and a user's BaseBackend keep encoded doubles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/result.hpp"
#include "ratelimiter/store/operation.hpp"

namespace ratelimiter {

// The state of one key as a store holds it: the stored one decoded, or a fresh one when
// absent. `on_corrupt()` is called (and must throw) when the stored doubles are not a state
// this algorithm could have written. The only place stores decode a state.
template <class Algo, class OnCorrupt>
typename Algo::State load_state(bool present, const double* data, std::size_t n, double now,
                                const typename Algo::Params& params, OnCorrupt&& on_corrupt) {
    typename Algo::State state = Algo::fresh(now, params);
    if (present && !Algo::decode(data, n, state)) on_corrupt();
    return state;
}

// Algo::step and Algo::peek, handing over the per-call input to an algorithm that takes one.
template <class Algo>
Decision step_with(typename Algo::State& state, double now, std::int64_t cost,
                   const typename Algo::Params& params, const StepInputOf<Algo>& input) {
    if constexpr (kTakesStepInput<Algo>) {
        return Algo::step(state, now, cost, params, input);
    } else {
        (void)input;
        return Algo::step(state, now, cost, params);
    }
}
template <class Algo>
Decision peek_with(const typename Algo::State& state, double now,
                   const typename Algo::Params& params, const StepInputOf<Algo>& input) {
    if constexpr (kTakesStepInput<Algo>) {
        return Algo::peek(state, now, params, input);
    } else {
        (void)input;
        return Algo::peek(state, now, params);
    }
}

// Runs `op` on `state` in place. When the state changed, calls save(state, fresh_at): the
// store writes it back with that expiry. It changes on an admission, and on a clock-glitch
// re-base (Algo::rebase, docs/ALGORITHMS.md "Stored state"), saved even when the step then
// rejects: else a key at its limit during the glitch would re-base to each request's own
// `now`, be rejected, and stay locked until real time catches up. A peek never changes it.
// The consume half, on its own so that `d` is its only return value: the compiler then
// builds the Decision in the caller's slot (NRVO) instead of copying 80 bytes per step.
template <class Algo, class Save>
Decision consume_step(typename Algo::State& state, double now, std::int64_t cost,
                      const typename Algo::Params& params, Save&& save,
                      const StepInputOf<Algo>& input) {
    const bool rebased = Algo::rebase(state, now, params);
    Decision d = step_with<Algo>(state, now, cost, params, input);
    if (d.allowed || rebased) {
        save(static_cast<const typename Algo::State&>(state), Algo::fresh_at(state, params));
    }
    return d;
}
template <class Algo, class Save>
Decision apply_step(typename Algo::State& state, double now, std::int64_t cost,
                    const typename Algo::Params& params, Operation op, Save&& save,
                    const StepInputOf<Algo>& input = {}) {
    if (op == Operation::peek) return peek_with<Algo>(state, now, params, input);
    return consume_step<Algo>(state, now, cost, params, save, input);
}

// What a store of encoded states (SQLite, a Python BaseBackend) writes back: the encoded
// state and its expiry, and whether to write at all.
struct EncodedWrite {
    std::vector<double> encoded;
    double fresh_at = 0.0;
    bool write = false;
};

// load_state + apply_step for a store of encoded doubles; fills `out` (any type with the
// members of EncodedWrite).
template <class Algo, class Out, class OnCorrupt>
Decision apply_encoded_step(bool present, const double* data, std::size_t n, double now,
                            std::int64_t cost, const typename Algo::Params& params, Operation op,
                            Out& out, OnCorrupt&& on_corrupt,
                            const StepInputOf<Algo>& input = {}) {
    typename Algo::State state = load_state<Algo>(present, data, n, now, params, on_corrupt);
    return apply_step<Algo>(state, now, cost, params, op,
                            [&](const typename Algo::State& s, double fresh_at) {
                                Algo::encode(s, out.encoded);
                                out.fresh_at = fresh_at;
                                out.write = true;
                            },
                            input);
}

}  // namespace ratelimiter
