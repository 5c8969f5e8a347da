import NicrouteCore
import Testing

@Suite struct BackoffTests {
    @Test(
        arguments: [
            (2.0, 60.0, [2.0, 4, 8, 16, 32, 60, 60]),
            (1.0, 60.0, [1.0, 2, 4, 8, 16, 32, 60]),
            (5.0, 5.0, [5.0, 5, 5]),
            (10.0, 1.0, [10.0, 10]),  // a maximum below the start is the start
        ])
    func doublesUpToTheMaximum(initial: Double, maximum: Double, waits: [Double]) {
        var b = Backoff(initial: initial, maximum: maximum)
        #expect(b.current == nil)
        #expect(waits.map { _ in b.next() } == waits)
        #expect(b.current == waits.last)
    }

    @Test func resetStartsAgain() {
        var b = Backoff(initial: 2, maximum: 60)
        _ = b.next()
        _ = b.next()
        b.reset()
        #expect(b.current == nil)
        #expect(b.next() == 2)
    }
}
