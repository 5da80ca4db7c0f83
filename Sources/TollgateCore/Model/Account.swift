/// Whether an account may spend.
public enum AccountStatus: String, Sendable, Hashable, Codable {
    /// Normal: credits, debits and holds allowed.
    case active
    /// Spending refused (`account_frozen`); credits still accepted.
    case frozen
    /// Nothing more happens on this account.
    case closed
}

/// An account's figures at one moment.
public struct AccountState: Sendable, Hashable {
    public var id: AccountID
    public var status: AccountStatus
    /// Credit on the account: the sum of its ledger entries (I2).
    public var balance: Money
    /// Reserved by open holds.
    public var held: Money
    /// How far available credit may go below zero (0 by default).
    public var creditLimit: Money
    /// The part of the balance that is promotional credit (grants and coupons), spent first,
    /// soonest-expiring first.
    public var promotional: Money

    /// What can still be spent: balance − held.
    public var available: Money { Money(micros: balance.micros - held.micros) ?? .zero }
    /// The paid part of the balance: balance − promotional (negative when the account uses
    /// its credit limit).
    public var paid: Money { Money(micros: balance.micros - promotional.micros) ?? .zero }

    public init(id: AccountID, status: AccountStatus, balance: Money, held: Money, creditLimit: Money,
                promotional: Money = .zero) {
        self.id = id
        self.status = status
        self.balance = balance
        self.held = held
        self.creditLimit = creditLimit
        self.promotional = promotional
    }
}

/// The kinds of credit an operator can apply.
public enum CreditKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Paid credit added to the account.
    case topup
    /// Promotional credit; it may expire.
    case grant
    /// A correction by an operator; the only kind that may be negative.
    case adjustment
}
