import TollgateCore

/// Raised when a subscriber that fell behind did not take its `lagged` notice in time.
struct SubscriberLagged: Error {}

/// One account's stream for one subscriber: a snapshot (or the changes since `Last-Event-ID`),
/// then every change as it happens, each exactly once and in ledger order.
///
/// The subscription is made before anything is read from Redis, so nothing published during
/// the snapshot or replay is missed; live events at or before what was already sent are
/// skipped (entry ids of one account only increase). After a `gap` (the server's Redis
/// subscription was down) the session reads what it missed from the ledger.
struct AccountEventSession: Sendable {
    let engine: Engine
    let hub: EventHub
    let account: AccountID
    /// The client's `Last-Event-ID`, if it sent one.
    let resumeFrom: String?

    /// Sends the stream through `send` until the subscriber goes away (`send` throws), the
    /// hub shuts down, or the subscriber lags (then a `lagged` message is the last one).
    func run(_ subscription: EventHub.Subscription, send: (StreamMessage) async throws -> Void) async throws {
        await hub.waitUntilReady()
        var last: EventID
        if let resumeFrom, let resumed = try await resumePoint(resumeFrom) {
            last = resumed
            last = try await catchUp(after: last, send: send)
        } else {
            let snapshot = try await engineCall { () async throws(TollgateError) in try await engine.snapshot(account) }
            try await send(.snapshot(snapshot, reset: resumeFrom != nil, time: engine.clock.nowMilliseconds()))
            last = snapshot.lastEntryID
        }
        for await item in subscription.items {
            switch item {
            case .event(let event):
                switch event.kind {
                case .alert:
                    // Announced once, live only, right after the change that crossed.
                    try await send(.alert(event))
                case .change:
                    guard event.entryID > last else { continue }
                    try await send(.change(event))
                    last = event.entryID
                }
            case .gap:
                last = try await catchUp(after: last, send: send)
            case .heartbeat:
                try await send(.heartbeat)
            }
        }
        if subscription.lagged { try await send(.lagged(last: last)) }
    }

    /// The id to resume after, or nil when the id is malformed, names no entry of this
    /// account, or is older than the retention window (the client then gets a fresh snapshot).
    private func resumePoint(_ text: String) async throws -> EventID? {
        guard let id = EventID(text.trimmingCharacters(in: .whitespaces)) else { return nil }
        let now = engine.clock.nowMilliseconds()
        let (seconds, attoseconds) = hub.configuration.retention.components
        let retentionMs = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        guard Int64(clamping: id.milliseconds) >= now - retentionMs else { return nil }
        let known = try await engineCall { () async throws(TollgateError) in try await engine.ledgerContains(account, id) }
        return known ? id : nil
    }

    /// Sends every ledger entry after `last`; returns the newest sent.
    private func catchUp(after start: EventID, send: (StreamMessage) async throws -> Void) async throws -> EventID {
        var last = start
        while true {
            let page = try await engineCall { () async throws(TollgateError) in try await engine.events(account, after: last, limit: 500) }
            for event in page {
                try await send(.change(event))
                last = event.entryID
            }
            if page.count < 500 { return last }
        }
    }
}

/// The operators' firehose: every account's events matching a filter, live only.
struct FirehoseSession: Sendable {
    let hub: EventHub

    func run(_ subscription: EventHub.Subscription, send: (StreamMessage) async throws -> Void) async throws {
        await hub.waitUntilReady()
        try await send(.ready)
        for await item in subscription.items {
            switch item {
            case .event(let event):
                switch event.kind {
                case .alert: try await send(.alert(event))
                case .change: try await send(.change(event))
                }
            case .gap: try await send(.gap)
            case .heartbeat: try await send(.heartbeat)
            }
        }
        if subscription.lagged { try await send(.lagged(last: nil)) }
    }
}

/// Runs `body` (a session writing to its subscriber); if the subscription lags and `body`
/// has not ended `grace` later (its writes are stuck on a client that does not read), `body`
/// is cancelled and `SubscriberLagged` thrown, so the connection is closed and everything the
/// subscriber held is freed.
func cuttingOffLaggards(
    _ subscription: EventHub.Subscription, grace: Duration = .seconds(2),
    _ body: @escaping @Sendable () async throws -> Void
) async throws {
    defer { subscription.cancel() }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask {
            await subscription.waitUntilLagged()
            guard subscription.lagged else { return }
            try await Task.sleep(for: grace)
            throw SubscriberLagged()
        }
        defer { group.cancelAll() }
        do {
            try await group.next()
        } catch {
            subscription.cancel()
            throw error
        }
        subscription.cancel()
    }
}

/// Raised when the account token a stream was opened with has been revoked.
struct StreamTokenRevoked: Error {}

/// Runs `body` (a session writing to its subscriber) while `stillValid` says the token the
/// stream was opened with stands, asking it every `interval`; once it says no, `body` is
/// cancelled and `StreamTokenRevoked` thrown, so the connection closes. Without a check
/// (admin streams) it just runs `body`.
func endingWhenRevoked(
    every interval: Duration, _ stillValid: (@Sendable () async -> Bool)?,
    _ body: @escaping @Sendable () async throws -> Void
) async throws {
    guard let stillValid else { return try await body() }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask {
            while true {
                try await Task.sleep(for: interval)
                if await !stillValid() { throw StreamTokenRevoked() }
            }
        }
        defer { group.cancelAll() }
        try await group.next()
    }
}
