import NIOCore
import TollgateCore

/// One message of an event stream, as SSE (`id:`, `event:`, `data:`) or as a WebSocket text
/// frame (the same JSON; its `type` says what it is).
///
/// - `snapshot`: `{"type":"snapshot","id","account","status","balance","paid","promotional","held","available",
///   "credit_limit","low_balance_alert":null|{"threshold","armed"},"reset","time"}`, the
///   account as of ledger entry `id`; `reset` is true when a `Last-Event-ID` could not be
///   resumed (beyond retention or unknown), so the client must replace what it holds.
/// - `change`: `{"type":"change","id","entry_id","account","kind","amount","balance","held",
///   "available","time"}`, one ledger entry (`id` = `entry_id`, the resume point).
/// - `alert`: `{"type":"alert","alert":"low_balance","id","entry_id","account","threshold",
///   "balance","held","available","time"}`, raised by the change `entry_id`.
/// - `lagged`: `{"type":"lagged","id","message"}`, the subscriber fell behind and is
///   disconnected; resume from `id`.
/// - `gap` (firehose only): events may have been missed while the server's Redis
///   subscription was down.
/// - `ready` (firehose only): subscribed; every later event will arrive.
enum StreamMessage: Sendable {
    case snapshot(AccountSnapshot, reset: Bool, time: Int64)
    case change(AccountEvent)
    case alert(AccountEvent)
    case lagged(last: EventID?)
    case gap
    case ready
    case heartbeat

    var name: String {
        switch self {
        case .snapshot: return "snapshot"
        case .change: return "change"
        case .alert: return "alert"
        case .lagged: return "lagged"
        case .gap: return "gap"
        case .ready: return "ready"
        case .heartbeat: return "heartbeat"
        }
    }

    /// The SSE id: the ledger entry a client resumes after (alerts share their change's, so carry none).
    var id: String? {
        switch self {
        case .snapshot(let snapshot, _, _): return snapshot.lastEntryID.description
        case .change(let event): return event.entryID.description
        default: return nil
        }
    }

    var json: [UInt8] {
        switch self {
        case .snapshot(let snapshot, let reset, let time):
            let account = snapshot.account
            return JSON.encode(SnapshotBody(
                id: snapshot.lastEntryID.description, account: account.id.rawValue, status: account.status.rawValue,
                balance: account.balance, paid: account.paid, promotional: account.promotional, held: account.held, available: account.available, credit_limit: account.creditLimit,
                low_balance_alert: snapshot.lowBalanceAlert, reset: reset, time: Timestamp.iso8601(milliseconds: time)))
        case .change(let event):
            return JSON.encode(ChangeBody(
                id: event.entryID.description, entry_id: event.entryID.description, account: event.account.rawValue,
                kind: event.kind.description, amount: event.amount, balance: event.balance, held: event.held,
                available: event.available, time: Timestamp.iso8601(milliseconds: event.time)))
        case .alert(let event):
            return JSON.encode(AlertBody(
                id: event.entryID.description, entry_id: event.entryID.description, account: event.account.rawValue,
                threshold: event.amount, balance: event.balance, held: event.held, available: event.available,
                time: Timestamp.iso8601(milliseconds: event.time)))
        case .lagged(let last):
            return JSON.encode(LaggedBody(
                id: last?.description,
                message: "this subscriber fell behind and is disconnected; reconnect with Last-Event-ID to resume"))
        case .gap:
            return JSON.encode(["type": "gap", "message": "events may have been missed while the server was reconnecting to Redis"])
        case .ready:
            return JSON.encode(["type": "ready"])
        case .heartbeat:
            return JSON.encode(["type": "heartbeat"])
        }
    }

    /// The message as Server-Sent Events text; a heartbeat is a comment line.
    var sse: ByteBuffer {
        if case .heartbeat = self { return ByteBuffer(string: ": heartbeat\n\n") }
        var text = ""
        if let id { text += "id: \(id)\n" }
        text += "event: \(name)\ndata: "
        var buffer = ByteBuffer(string: text)
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }

    private struct SnapshotBody: Encodable {
        var type = "snapshot"
        let id: String
        let account: String
        let status: String
        let balance: Money
        let paid: Money
        let promotional: Money
        let held: Money
        let available: Money
        let credit_limit: Money
        let low_balance_alert: LowBalanceAlert?
        let reset: Bool
        let time: String

        enum CodingKeys: String, CodingKey {
            case type, id, account, status, balance, paid, promotional, held, available, credit_limit, low_balance_alert, reset, time
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type, forKey: .type)
            try c.encode(id, forKey: .id)
            try c.encode(account, forKey: .account)
            try c.encode(status, forKey: .status)
            try c.encode(balance, forKey: .balance)
            try c.encode(paid, forKey: .paid)
            try c.encode(promotional, forKey: .promotional)
            try c.encode(held, forKey: .held)
            try c.encode(available, forKey: .available)
            try c.encode(credit_limit, forKey: .credit_limit)
            try c.encode(low_balance_alert, forKey: .low_balance_alert)
            try c.encode(reset, forKey: .reset)
            try c.encode(time, forKey: .time)
        }
    }

    private struct ChangeBody: Encodable {
        var type = "change"
        let id: String
        let entry_id: String
        let account: String
        let kind: String
        let amount: Money
        let balance: Money
        let held: Money
        let available: Money
        let time: String
    }

    private struct AlertBody: Encodable {
        var type = "alert"
        var alert = "low_balance"
        let id: String
        let entry_id: String
        let account: String
        let threshold: Money
        let balance: Money
        let held: Money
        let available: Money
        let time: String
    }

    private struct LaggedBody: Encodable {
        var type = "lagged"
        let id: String?
        let message: String

        enum CodingKeys: String, CodingKey { case type, id, message }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type, forKey: .type)
            try c.encode(id, forKey: .id)
            try c.encode(message, forKey: .message)
        }
    }
}
