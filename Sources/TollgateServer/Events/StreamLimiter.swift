import HTTPTypes
import Synchronization
import TollgateCore

/// Counts the open event streams, overall and per account (its tokens together), so no caller can hold an
/// unbounded number of connections and subscriptions.
///
/// A stream takes a `Permit` before its response is written and gives it back when it ends;
/// a permit that is dropped unused (the connection went before the response body ran) gives
/// itself back when it is freed, so no path leaks a slot.
final class StreamLimiter: Sendable {
    private struct Counts {
        var total = 0
        var perAccount: [AccountID: Int] = [:]
    }

    let totalLimit: Int
    let perAccountLimit: Int
    private let counts = Mutex(Counts())

    init(total: Int, perAccount: Int) {
        totalLimit = total
        perAccountLimit = perAccount
    }

    /// Why a stream was refused.
    enum Refusal: Error, Sendable {
        case server, account
    }

    /// One open stream's slot; `release()` (or being freed) gives it back, once.
    final class Permit: Sendable {
        private let limiter: StreamLimiter
        private let account: AccountID?
        private let released = Atomic<Bool>(false)

        fileprivate init(limiter: StreamLimiter, account: AccountID?) {
            self.limiter = limiter
            self.account = account
        }

        func release() {
            guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
            limiter.give(account)
        }

        deinit { release() }
    }

    /// A slot for a stream of `caller`: account tokens count against their own limit as well
    /// as the overall one; the admin only against the overall one.
    func acquire(for caller: Caller) throws(Refusal) -> Permit {
        let account: AccountID?
        if case .account(let id) = caller { account = id } else { account = nil }
        let refusal = counts.withLock { counts -> Refusal? in
            guard counts.total < totalLimit else { return .server }
            if let account {
                let held = counts.perAccount[account, default: 0]
                guard held < perAccountLimit else { return .account }
                counts.perAccount[account] = held + 1
            }
            counts.total += 1
            return nil
        }
        if let refusal { throw refusal }
        return Permit(limiter: self, account: account)
    }

    /// Streams open now (overall, and for one account token).
    var open: Int { counts.withLock { $0.total } }
    func open(for account: AccountID) -> Int { counts.withLock { $0.perAccount[account, default: 0] } }

    private func give(_ account: AccountID?) {
        counts.withLock { counts in
            counts.total -= 1
            if let account {
                let left = counts.perAccount[account, default: 1] - 1
                counts.perAccount[account] = left > 0 ? left : nil
            }
        }
    }
}

extension StreamLimiter.Refusal {
    /// The JSON 429 a refused stream gets.
    var apiError: APIError {
        switch self {
        case .server:
            return APIError(.tooManyRequests, "too_many_streams", "this server has as many event streams open as it serves; try again later")
        case .account:
            return APIError(.tooManyRequests, "too_many_streams", "this account has as many event streams open as one account may (over all its tokens); close one first")
        }
    }
}
