import ArgumentParser

struct TollgateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "Real-time credit, rate and quota engine on Redis.",
        discussion: """
            Every command works in-process against Redis (--redis, or TOLLGATE_REDIS_URL, \
            else redis://127.0.0.1:6379). Amounts are credits as decimal strings with up to \
            6 decimals (1 credit = 1 USDT). Every mutation takes a request id (--id): \
            repeating it repeats the first answer and changes nothing.

            Exit codes: 0 done (or allowed), 1 error, 2 bad input, 3 denied.
            """,
        subcommands: [
            ServeCommand.self,
            AccountCommand.self,
            CreditCommand.self,
            DebitCommand.self,
            HoldCommand.self,
            CaptureCommand.self,
            ReleaseCommand.self,
            AuthorizeCommand.self,
            BatchCommand.self,
            SettleCommand.self,
            GrantCommand.self,
            CouponCommand.self,
            DepositsCommand.self,
            UsageCommand.self,
            StatementCommand.self,
            PriceCommand.self,
            KeyCommand.self,
            TokenCommand.self,
            LimitsCommand.self,
            LedgerCommand.self,
            AuditCommand.self,
            LuaCommand.self,
            LoadtestCommand.self,
        ]
    )
}
