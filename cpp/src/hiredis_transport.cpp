#include "hiredis_transport.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

#include "ratelimiter/store/lua_index.hpp"

namespace ratelimiter::detail {
namespace {

timeval to_timeval(double seconds) {
    const double whole = std::floor(seconds);
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(whole);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((seconds - whole) * 1e6);
    return tv;
}

bool is_error(const redisReply* r) { return r->type == REDIS_REPLY_ERROR; }

std::string reply_text(const redisReply* r) {
    return std::string(r->str, static_cast<std::size_t>(r->len));
}

RedisValue to_value(const redisReply* r) {
    RedisValue v;
    switch (r->type) {
        case REDIS_REPLY_INTEGER:
            v.type = RedisValue::Type::integer;
            v.integer = r->integer;
            break;
        case REDIS_REPLY_STRING:
            v.type = RedisValue::Type::string;
            v.str = reply_text(r);
            break;
        case REDIS_REPLY_STATUS:
            v.type = RedisValue::Type::status;
            v.str = reply_text(r);
            break;
        case REDIS_REPLY_ERROR:
            v.type = RedisValue::Type::error;
            v.str = reply_text(r);
            break;
        case REDIS_REPLY_ARRAY:
            v.type = RedisValue::Type::array;
            v.elements.reserve(r->elements);
            for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(to_value(r->element[i]));
            break;
        default:
            v.type = RedisValue::Type::nil;
    }
    return v;
}

// Whether an idle pooled connection was closed by the server (e.g. Redis restarted): a
// healthy idle connection has nothing to read, so readable means EOF, a reset or garbage.
bool looks_dead(const redisContext* c) {
    pollfd p{};
    p.fd = c->fd;
    p.events = POLLIN;
    return ::poll(&p, 1, 0) != 0;
}

}  // namespace

void HiredisTransport::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }
void HiredisTransport::ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

HiredisTransport::HiredisTransport(RedisOptions options) : options_(std::move(options)) {}

HiredisTransport::~HiredisTransport() = default;

std::string HiredisTransport::address() const {
    if (!options_.unix_socket.empty()) return "unix:" + options_.unix_socket;
    return options_.host + ":" + std::to_string(options_.port);
}

void HiredisTransport::throw_io_error(redisContext* c, const char* what) {
    const int saved_errno = errno;
    const std::string detail = c->errstr[0] != '\0' ? c->errstr : std::strerror(saved_errno);
    bool timed_out = c->err == REDIS_ERR_IO &&
                     (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT);
#ifdef REDIS_ERR_TIMEOUT
    timed_out = timed_out || c->err == REDIS_ERR_TIMEOUT;
#endif
    if (timed_out) {
        throw BackendError("redis at " + address() + ": " + what + " timed out after " +
                           std::to_string(options_.command_timeout) + " s");
    }
    throw BackendConnectionError("redis at " + address() + ": " + what + " failed: " + detail);
}

HiredisTransport::Reply HiredisTransport::round_trip(redisContext* c,
                                                     const std::vector<const char*>& argv,
                                                     const std::vector<std::size_t>& lengths) {
    if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), const_cast<const char**>(argv.data()),
                               lengths.data()) != REDIS_OK) {
        throw_io_error(c, argv[0]);
    }
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) throw_io_error(c, argv[0]);
    return Reply(static_cast<redisReply*>(raw));
}

HiredisTransport::Connection HiredisTransport::connect() {
    const timeval connect_tv = to_timeval(options_.connect_timeout);
    Connection c(options_.unix_socket.empty()
                     ? redisConnectWithTimeout(options_.host.c_str(), options_.port, connect_tv)
                     : redisConnectUnixWithTimeout(options_.unix_socket.c_str(), connect_tv));
    if (!c) throw BackendConnectionError("redis at " + address() + ": out of memory");
    if (c->err != 0) {
        throw BackendConnectionError("cannot connect to redis at " + address() + ": " + c->errstr);
    }
    if (redisSetTimeout(c.get(), to_timeval(options_.command_timeout)) != REDIS_OK) {
        throw_io_error(c.get(), "setting the timeout");
    }
    // Pipelined: AUTH, SELECT, and every script, so that EVALSHA finds them even right after
    // a Redis restart (no NOSCRIPT round trip on the hot path).
    std::vector<std::vector<std::string>> setup;
    if (!options_.password.empty()) {
        if (options_.username.empty()) {
            setup.push_back({"AUTH", options_.password});
        } else {
            setup.push_back({"AUTH", options_.username, options_.password});
        }
    }
    if (options_.db != 0) setup.push_back({"SELECT", std::to_string(options_.db)});
    for (const auto& script : lua::kScripts) setup.push_back({"SCRIPT", "LOAD", script.source});
    for (const auto& script : lua::kMultiScripts) {
        setup.push_back({"SCRIPT", "LOAD", script.source});
    }
    for (const auto& script : lua::kBatchScripts) {
        setup.push_back({"SCRIPT", "LOAD", script.source});
    }
    for (const auto& cmd : setup) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        for (const auto& a : cmd) {
            argv.push_back(a.data());
            lengths.push_back(a.size());
        }
        if (redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(),
                                   lengths.data()) != REDIS_OK) {
            throw_io_error(c.get(), "connection setup");
        }
    }
    for (const auto& cmd : setup) {
        void* raw = nullptr;
        if (redisGetReply(c.get(), &raw) != REDIS_OK || raw == nullptr) {
            throw_io_error(c.get(), "connection setup");
        }
        const Reply reply(static_cast<redisReply*>(raw));
        if (is_error(reply.get())) {
            throw BackendError("redis at " + address() + ": " + cmd[0] + " failed: " +
                               reply_text(reply.get()));
        }
    }
    load_library(c.get());
    return c;
}

HiredisTransport::Lease HiredisTransport::acquire() {
    std::uint64_t generation;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        generation = generation_;
        while (!idle_.empty()) {
            Connection c = std::move(idle_.back());
            idle_.pop_back();
            if (!looks_dead(c.get())) return Lease{std::move(c), generation};
        }
        if (std::chrono::steady_clock::now() < connect_blocked_until_) {
            throw BackendConnectionError("redis at " + address() +
                                         " is unreachable (waiting before reconnecting)");
        }
    }
    try {
        return Lease{connect(), generation};
    } catch (const BackendConnectionError&) {
        std::lock_guard<std::mutex> lock(mutex_);
        connect_blocked_until_ =
            std::chrono::steady_clock::now() +
            std::chrono::microseconds(static_cast<std::int64_t>(options_.reconnect_interval * 1e6));
        throw;
    }
}

void HiredisTransport::give_back(Lease lease) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (lease.generation == generation_ && idle_.size() < options_.max_idle_connections) {
        idle_.push_back(std::move(lease.connection));
    }
}

void HiredisTransport::close() {
    std::vector<Connection> closing;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ++generation_;
        closing.swap(idle_);
    }
}

// Redis >= 7 Functions: the library's helpers are built once, at its first call, where a
// script rebuilds its whole prelude on every call (measured: a token-bucket decision costs
// ~20% less inside Redis; bench/bench_redis_script.py). The library is persisted and
// replicated with the data, unlike the script cache.
void HiredisTransport::load_library(redisContext* c) {
    const Reply reply = round_trip(c, {"FUNCTION", "LOAD", lua::kLibrary},
                                   {8, 4, std::strlen(lua::kLibrary)});
    const bool loaded =
        !is_error(reply.get()) || std::strstr(reply->str, "already exists") != nullptr;
    functions_.store(loaded, std::memory_order_relaxed);
}

namespace {
// FCALL of a function the server does not have (FUNCTION FLUSH, a restart without
// persistence, a replica promoted before the library reached it).
bool is_function_missing(const redisReply* r) {
    return r != nullptr && is_error(r) && std::strstr(r->str, "Function not found") != nullptr;
}
}  // namespace

std::vector<std::string> HiredisTransport::eval(AlgorithmId algorithm, const std::string& key,
                                                const std::vector<std::string>& args) {
    return run_script(lua::script(algorithm), {key}, args);
}

std::vector<std::string> HiredisTransport::eval_multi(AlgorithmId algorithm,
                                                      const std::vector<std::string>& keys,
                                                      const std::vector<std::string>& args) {
    return run_script(lua::multi_script(algorithm), keys, args);
}

std::vector<std::string> HiredisTransport::run_script(const lua::Script& script,
                                                      const std::vector<std::string>& keys,
                                                      const std::vector<std::string>& args) {
    return run_script_routed(script, keys, args, false, nullptr);
}

// ASK redirections need ASKING on the very connection that runs the command, right before
// it (Redis clears the flag after each command), so it is pipelined in front of it.
HiredisTransport::Reply HiredisTransport::round_trip_asking(
    redisContext* c, bool asking, const std::vector<const char*>& argv,
    const std::vector<std::size_t>& lengths) {
    if (asking) {
        if (redisAppendCommand(c, "ASKING") != REDIS_OK ||
            redisAppendCommandArgv(c, static_cast<int>(argv.size()),
                                   const_cast<const char**>(argv.data()),
                                   lengths.data()) != REDIS_OK) {
            throw_io_error(c, argv[0]);
        }
        void* raw = nullptr;
        if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) throw_io_error(c, "ASKING");
        freeReplyObject(raw);  // +OK; the command's own reply says the rest
        raw = nullptr;
        if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) throw_io_error(c, argv[0]);
        return Reply(static_cast<redisReply*>(raw));
    }
    return round_trip(c, argv, lengths);
}

std::vector<std::string> HiredisTransport::run_script_routed(const lua::Script& script,
                                                             const std::vector<std::string>& keys,
                                                             const std::vector<std::string>& args,
                                                             bool asking, std::string* redirect) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size() + keys.size() + 3);
    lengths.reserve(args.size() + keys.size() + 3);
    const auto push = [&](const char* data, std::size_t size) {
        argv.push_back(data);
        lengths.push_back(size);
    };
    push("EVALSHA", 7);
    push(script.sha1, std::strlen(script.sha1));
    const std::string numkeys = std::to_string(keys.size());
    push(numkeys.data(), numkeys.size());
    for (const auto& k : keys) push(k.data(), k.size());
    for (const auto& a : args) push(a.data(), a.size());

    Lease lease = acquire();
    Reply reply;
    const char* function =
        functions_.load(std::memory_order_relaxed) ? lua::function_of(script) : nullptr;
    if (function != nullptr) {
        argv[0] = "FCALL";
        lengths[0] = 5;
        argv[1] = function;
        lengths[1] = std::strlen(function);
        reply = round_trip_asking(lease.connection.get(), asking, argv, lengths);
        if (is_function_missing(reply.get())) {
            load_library(lease.connection.get());  // nothing ran: load it again, retry once
            reply = round_trip_asking(lease.connection.get(), asking, argv, lengths);
        }
        if (is_function_missing(reply.get())) reply.reset();  // then the script, below
    }
    if (!reply) {
        argv[0] = "EVALSHA";
        lengths[0] = 7;
        argv[1] = script.sha1;
        lengths[1] = std::strlen(script.sha1);
        reply = round_trip_asking(lease.connection.get(), asking, argv, lengths);
    }
    if (is_error(reply.get()) && std::strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        // Script cache flushed (SCRIPT FLUSH): EVAL runs the source and caches it again in
        // the same round trip, so a flush racing with us cannot make the retry fail too.
        argv[0] = "EVAL";
        lengths[0] = 4;
        argv[1] = script.source;
        lengths[1] = std::strlen(script.source);
        reply = round_trip_asking(lease.connection.get(), asking, argv, lengths);
    }
    give_back(std::move(lease));
    if (is_error(reply.get())) {
        if (redirect != nullptr && is_redirection(reply_text(reply.get()))) {
            *redirect = reply_text(reply.get());
            return {};
        }
        throw BackendError("redis " + std::string(script.name) + " script failed: " +
                           reply_text(reply.get()));
    }
    return script_fields(script, reply.get());
}

bool HiredisTransport::is_redirection(const std::string& error) {
    return error.rfind("MOVED ", 0) == 0 || error.rfind("ASK ", 0) == 0 ||
           error.rfind("TRYAGAIN", 0) == 0;
}

RedisValue HiredisTransport::command_routed(const std::vector<std::string>& argv_strings,
                                            bool asking) {
    if (argv_strings.empty()) throw BackendError("redis command: empty argument list");
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : argv_strings) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    Lease lease = acquire();
    const Reply reply = round_trip_asking(lease.connection.get(), asking, argv, lengths);
    give_back(std::move(lease));
    return to_value(reply.get());
}

std::vector<std::string> HiredisTransport::script_fields(const lua::Script& script,
                                                         const redisReply* reply) {
    if (reply->type == REDIS_REPLY_STRING) return {reply_text(reply)};
    if (reply->type != REDIS_REPLY_ARRAY) {
        throw BackendError("redis " + std::string(script.name) + " script returned neither a "
                           "string nor a list");
    }
    std::vector<std::string> out;
    out.reserve(reply->elements);
    for (std::size_t i = 0; i < reply->elements; ++i) {
        const redisReply* e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING) {
            throw BackendError("redis " + std::string(script.name) +
                               " script returned a non-string field");
        }
        out.push_back(reply_text(e));
    }
    return out;
}

// Every EVALSHA is appended to the connection's output buffer first and the replies read
// afterwards: hiredis writes the buffer on the first redisGetReply, so the whole batch costs
// one round trip (Redis answers pipelined commands in order). NOSCRIPT replies (a flushed
// script cache) are retried as EVAL of the source, again pipelined.
std::vector<ScriptReply> HiredisTransport::eval_each(AlgorithmId algorithm,
                                                     const std::vector<std::string>& keys,
                                                     const std::vector<std::string>& args) {
    const lua::Script& script = lua::script(algorithm);
    std::vector<const char*> argv{"EVALSHA", script.sha1, "1", nullptr};
    std::vector<std::size_t> lengths{7, std::strlen(script.sha1), 1, 0};
    for (const auto& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    std::vector<Reply> replies(keys.size());
    Lease lease = acquire();
    redisContext* c = lease.connection.get();
    const auto send_and_read = [&](const std::vector<std::size_t>& which) {
        for (std::size_t i : which) {
            argv[3] = keys[i].data();
            lengths[3] = keys[i].size();
            if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(),
                                       lengths.data()) != REDIS_OK) {
                throw_io_error(c, argv[0]);
            }
        }
        for (std::size_t i : which) {
            void* raw = nullptr;
            if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) throw_io_error(c, argv[0]);
            replies[i] = Reply(static_cast<redisReply*>(raw));
        }
    };
    std::vector<std::size_t> all(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) all[i] = i;
    send_and_read(all);
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (is_error(replies[i].get()) && std::strncmp(replies[i]->str, "NOSCRIPT", 8) == 0) {
            missing.push_back(i);
        }
    }
    if (!missing.empty()) {
        argv[0] = "EVAL";
        lengths[0] = 4;
        argv[1] = script.source;
        lengths[1] = std::strlen(script.source);
        send_and_read(missing);
    }
    give_back(std::move(lease));
    std::vector<ScriptReply> out(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (is_error(replies[i].get())) {
            out[i].error = reply_text(replies[i].get());
        } else {
            out[i].fields = script_fields(script, replies[i].get());
        }
    }
    return out;
}

// One Redis (not a cluster node, whose keys may span slots): the batch script
// (cpp/lua/batch/_driver.lua) decides up to kBatchKeys keys per call, so the fixed toll of a
// script call (dispatch, the prelude, TIME) is paid once per chunk instead of once per key.
// Chunks keep each call short (a script blocks the server while it runs). Every chunk is
// pipelined, as in eval_each: one round trip; a NOSCRIPT chunk ran nothing and is sent
// again as EVAL of the source. A chunk's error reply (nothing of it decided, or the server
// failed it as a whole) fails each of its keys; a key's own error fails only that key.
std::vector<ScriptReply> HiredisTransport::eval_many(AlgorithmId algorithm,
                                                     const std::vector<std::string>& keys,
                                                     const std::vector<std::string>& args) {
    const lua::Script& script = lua::batch_script(algorithm);
    const std::size_t chunks = (keys.size() + kBatchKeys - 1) / kBatchKeys;
    std::vector<Reply> replies(chunks);
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(3 + kBatchKeys + args.size());
    lengths.reserve(3 + kBatchKeys + args.size());
    Lease lease = acquire();
    redisContext* c = lease.connection.get();
    const auto send = [&](std::size_t chunk, bool with_source) {
        const std::size_t begin = chunk * kBatchKeys;
        const std::size_t end = std::min(keys.size(), begin + kBatchKeys);
        const std::string numkeys = std::to_string(end - begin);
        argv.clear();
        lengths.clear();
        const auto push = [&](const char* data, std::size_t size) {
            argv.push_back(data);
            lengths.push_back(size);
        };
        if (with_source) {
            push("EVAL", 4);
            push(script.source, std::strlen(script.source));
        } else {
            push("EVALSHA", 7);
            push(script.sha1, std::strlen(script.sha1));
        }
        push(numkeys.data(), numkeys.size());
        for (std::size_t i = begin; i < end; ++i) push(keys[i].data(), keys[i].size());
        for (const auto& a : args) push(a.data(), a.size());
        // hiredis formats the command into its output buffer here: argv may change after.
        if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(),
                                   lengths.data()) != REDIS_OK) {
            throw_io_error(c, argv[0]);
        }
    };
    const auto read = [&](std::size_t chunk) {
        void* raw = nullptr;
        if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) throw_io_error(c, "EVALSHA");
        replies[chunk] = Reply(static_cast<redisReply*>(raw));
    };
    for (std::size_t chunk = 0; chunk < chunks; ++chunk) send(chunk, false);
    for (std::size_t chunk = 0; chunk < chunks; ++chunk) read(chunk);
    std::vector<std::size_t> missing;
    for (std::size_t chunk = 0; chunk < chunks; ++chunk) {
        if (is_error(replies[chunk].get()) &&
            std::strncmp(replies[chunk]->str, "NOSCRIPT", 8) == 0) {
            missing.push_back(chunk);
        }
    }
    for (std::size_t chunk : missing) send(chunk, true);
    for (std::size_t chunk : missing) read(chunk);
    give_back(std::move(lease));

    std::vector<ScriptReply> out(keys.size());
    for (std::size_t chunk = 0; chunk < chunks; ++chunk) {
        const redisReply* r = replies[chunk].get();
        const std::size_t begin = chunk * kBatchKeys;
        const std::size_t n = std::min(keys.size(), begin + kBatchKeys) - begin;
        std::string chunk_error;
        if (is_error(r)) {
            chunk_error = reply_text(r);
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
            chunk_error = "the batch script returned a reply of unexpected shape";
        }
        for (std::size_t j = 0; j < n; ++j) {
            ScriptReply& o = out[begin + j];
            if (!chunk_error.empty()) {
                o.error = chunk_error;
                continue;
            }
            const redisReply* e = r->element[j];
            if (is_error(e)) {
                o.error = reply_text(e);
                continue;
            }
            try {
                o.fields = script_fields(script, e);
            } catch (const BackendError& err) {
                o.error = err.what();
            }
        }
    }
    return out;
}

void HiredisTransport::del(const std::string& key) {
    const RedisValue v = command({"DEL", key});
    if (v.type == RedisValue::Type::error) throw BackendError("redis DEL failed: " + v.str);
}

RedisValue HiredisTransport::command(const std::vector<std::string>& argv_strings) {
    return command_routed(argv_strings, false);
}

}  // namespace ratelimiter::detail
