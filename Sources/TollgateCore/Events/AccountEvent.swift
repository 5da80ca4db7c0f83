/// An event id: a ledger entry id `<ms>-<n>`, ordered the way Redis orders stream ids.
/// Ids of one account only ever increase, so a subscriber deduplicates by comparing them.
public struct EventID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let milliseconds: UInt64
    public let sequence: UInt64

    /// The id before every other (`0-0`): "from the start".
    public static let zero = EventID(milliseconds: 0, sequence: 0)

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `<ms>-<n>`; nil for anything else.
    public init?(_ text: some StringProtocol) {
        guard text.utf8.count <= 41, let dash = text.firstIndex(of: "-"),
              let ms = UInt64(text[..<dash]), let seq = UInt64(text[text.index(after: dash)...]) else { return nil }
        self.init(milliseconds: ms, sequence: seq)
    }

    public static func < (a: EventID, b: EventID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }

    public var description: String { "\(milliseconds)-\(sequence)" }
}

/// One change of an account's balance or held amount, as the Lua step that made it announced
/// it (or as read back from the ledger), or a low-balance alert raised by that step.
public struct AccountEvent: Sendable, Hashable {
    /// What happened: a ledger kind (`debit`, `topup`, `hold`...) or `alert`.
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        case change(LedgerKind)
        /// Available credit fell below the account's low-balance threshold (`amount`).
        case alert

        public init?(_ text: some StringProtocol) {
            if text == "alert" { self = .alert; return }
            guard let kind = LedgerKind(rawValue: String(text)) else { return nil }
            self = .change(kind)
        }

        public var description: String {
            switch self {
            case .change(let kind): return kind.rawValue
            case .alert: return "alert"
            }
        }
    }

    /// The ledger entry this event is (or, for an alert, the entry that crossed the threshold).
    public var entryID: EventID
    public var account: AccountID
    public var kind: Kind
    /// The change of balance; for an alert, the threshold crossed.
    public var amount: Money
    /// Balance after the change.
    public var balance: Money
    /// Held after the change.
    public var held: Money
    /// When the change happened, ms since the epoch (the engine's clock).
    public var time: Int64

    /// Balance − held.
    public var available: Money { Money(micros: balance.micros - held.micros) ?? .zero }

    public init(entryID: EventID, account: AccountID, kind: Kind, amount: Money, balance: Money, held: Money, time: Int64) {
        self.entryID = entryID
        self.account = account
        self.kind = kind
        self.amount = amount
        self.balance = balance
        self.held = held
        self.time = time
    }

    /// The channel every Lua step announces changes on (`lua/05_events.lua`).
    public static let channel = "tg:events"

    /// Parses a `tg:events` message:
    /// `<entry id>|<kind>|<amount>|<balance>|<held>|<time ms>|<account key>`.
    public init?(message: [UInt8]) {
        let bar = UInt8(ascii: "|")
        var fields: [ArraySlice<UInt8>] = []
        var start = message.startIndex
        var index = message.startIndex
        while index < message.endIndex && fields.count < 6 {
            if message[index] == bar {
                fields.append(message[start..<index])
                start = index + 1
            }
            index += 1
        }
        guard fields.count == 6 else { return nil }
        func text(_ slice: ArraySlice<UInt8>) -> String { String(decoding: slice, as: UTF8.self) }
        func micros(_ slice: ArraySlice<UInt8>) -> Money? { Int64(text(slice)).flatMap(Money.init(micros:)) }
        guard let id = EventID(text(fields[0])), let kind = Kind(text(fields[1])),
              let amount = micros(fields[2]), let balance = micros(fields[3]), let held = micros(fields[4]),
              let time = Int64(text(fields[5])),
              let account = AccountKeys.accountID(fromAccountKey: text(message[start...])) else { return nil }
        self.init(entryID: id, account: account, kind: kind, amount: amount, balance: balance, held: held, time: time)
    }

    /// The event of a ledger entry read back from the ledger.
    public init?(entry: LedgerEntry, account: AccountID) {
        guard let id = EventID(entry.id) else { return nil }
        self.init(entryID: id, account: account, kind: .change(entry.kind), amount: entry.amount,
                  balance: entry.balance, held: entry.held, time: entry.time)
    }
}

/// An account as of its newest ledger entry: what a new subscriber sees first.
public struct AccountSnapshot: Sendable, Hashable {
    public var account: AccountState
    /// The newest ledger entry (`0-0` for an account without entries); changes after it follow.
    public var lastEntryID: EventID
    /// The low-balance alert, if one is set.
    public var lowBalanceAlert: LowBalanceAlert?
}

/// A low-balance alert setting: fires once when available credit falls below `threshold`
/// while `armed`, and is armed again when available credit is back at the threshold or above.
public struct LowBalanceAlert: Sendable, Hashable, Encodable {
    public var threshold: Money
    public var armed: Bool
}
