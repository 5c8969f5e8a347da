import Netlink
import NicrouteCore
let ns = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : nil
let nl = try RouteNetlink(networkNamespace: ns)
for l in try nl.links() { print(l) }
for a in try nl.addresses() { print(a.linkIndex, a.prefix, a.flags, a.scope) }
for r in try nl.routes(family: .inet) + nl.routes(family: .inet6) { print(IPCommand.route("show", r)) }
for r in try nl.rules(family: .inet) + nl.rules(family: .inet6) { print(IPCommand.rule("show", r)) }
