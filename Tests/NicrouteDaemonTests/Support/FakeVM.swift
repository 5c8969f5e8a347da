import NetlinkTesting
import NicrouteCore

// A VM's kernel picture for the tests over the FakeKernel (the Reconciler's, the loop driver's).

let upFlags: LinkFlags = [.up, .broadcast, .running, .lowerUp]

func nic(_ index: Int32, _ name: String, mac: UInt8) -> Link {
    Link(
        index: index, name: name, mac: MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, mac]), flags: upFlags,
        operationalState: .up, mtu: 1500, hardwareType: 1)
}

func address(_ index: Int32, _ text: String) -> InterfaceAddress {
    let p = IPPrefix(text)!
    return InterfaceAddress(linkIndex: index, address: p.address, prefixLength: p.length, flags: [.permanent])
}

/// eth0 (10.10.10.29/24, the default route) and eth1 (20.20.20.16/24, gateway by configuration).
func twoNICVM() -> FakeKernel.Objects {
    let a0 = address(2, "10.10.10.29/24")
    let a1 = address(3, "20.20.20.16/24")
    func connected(_ a: InterfaceAddress) -> Route {
        Route(
            family: .inet, table: RoutingTable.main, destination: a.subnet, proto: .kernel, scope: .link,
            outputInterface: a.linkIndex, preferredSource: a.address)
    }
    return FakeKernel.Objects(
        links: [
            Link(index: 1, name: "lo", flags: [.up, .loopback], hardwareType: 772), nic(2, "eth0", mac: 1),
            nic(3, "eth1", mac: 2),
        ],
        addresses: [a0, a1],
        routes: [
            connected(a0), connected(a1),
            Route(
                family: .inet, table: RoutingTable.main, destination: IPPrefix("0.0.0.0/0")!, proto: .dhcp,
                gateway: IPAddress("10.10.10.1"), outputInterface: 2),
        ],
        rules: [
            Rule(family: .inet, priority: 32766, table: RoutingTable.main, proto: .kernel),
            Rule(family: .inet, priority: 32767, table: RoutingTable.default, proto: .kernel),
        ])
}
