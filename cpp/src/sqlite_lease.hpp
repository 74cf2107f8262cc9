// SqliteStore::Lease, shared by the store's source files (sqlite_store.cpp: limiter state;
// sqlite_primitives.cpp: the BaseBackend primitives).
#pragma once

#include <unistd.h>

#include <chrono>
#include <mutex>

#include "ratelimiter/error.hpp"
#include "ratelimiter/store/sqlite_store.hpp"
#include "sqlite_connection.hpp"

namespace ratelimiter {

// Holds the store's mutex (waiting at most ~busy_timeout, so a stuck holder gives an error
// rather than a hang) and yields the connection, reopening it in a forked child.
class SqliteStore::Lease {
public:
    explicit Lease(SqliteStore& store) : store_(store), lock_(store.mutex_, std::defer_lock) {
        // The holder waits at most busy_timeout on SQLite itself; the margin covers its step.
        const auto wait = store.options_.busy_timeout + std::chrono::milliseconds(1000);
        if (!lock_.try_lock_for(wait)) {
            throw BackendError("SQLite database '" + store.path_ +
                               "': timed out waiting for its connection, held by another "
                               "thread of this process");
        }
        if (store.closed_) throw BackendError("SQLite database '" + store.path_ + "' is closed");
        const pid_t pid = getpid();
        if (store.owner_pid_ != pid) {
            // A connection inherited through fork() must never be used (SQLite's locks are
            // per process) nor closed (closing could disturb the parent's): abandon it. An
            // in-memory database was copied with the process and is still private: keep it.
            if (!store.in_memory_) (void)store.connection_.release();
            store.owner_pid_ = pid;
        }
        if (!store.connection_) {
            store.connection_ =
                std::make_unique<SqliteConnection>(store.path_, store.options_, store.in_memory_);
        }
    }
    SqliteConnection& connection() { return *store_.connection_; }

private:
    SqliteStore& store_;
    std::unique_lock<std::timed_mutex> lock_;
};

}  // namespace ratelimiter
