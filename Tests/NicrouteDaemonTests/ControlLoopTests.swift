import Foundation
import NicrouteCore
import Testing

@testable import NicrouteDaemon

/// The control socket on the daemon's event loop: what only the loop's own server does.
@Suite(.serialized) struct ControlLoopTests {
    /// A client in the middle of its request when the daemon stops gets an answer, not silence.
    @Test(.timeLimit(.minutes(1)))
    func aClientConnectedAtShutdownIsToldTheDaemonIsStopping() async throws {
        let tree = try SocketDirectory()
        let path = tree.root + "/control.sock"
        let server = try LoopServer(
            path: path, service: ControlService(policy: ControlPolicy(), backend: RecordingBackend()),
            timeout: .seconds(10))
        let sent = DispatchSemaphore(value: 0)
        let half = Array(#"{"version":1,"comm"#.utf8)
        async let answer = onThread { () -> [UInt8]? in
            try? RawClient.exchange(path, half, closeWrite: false) { sent.signal() }
        }
        await onThread {
            sent.wait()
            usleep(100_000)  // the request's first half is in
            server.stop()
        }
        let bytes = try #require(await answer)
        let response = try readAnswer(bytes)
        #expect(response == .failure(ControlError(.failed, "nicrouted is stopping")))
    }

    /// Clients are served one after the other by one thread: a slow answer holds the next ones,
    /// and every one of them is answered.
    @Test(.timeLimit(.minutes(1)))
    func requestsQueuedBehindASlowAnswerAreAllAnswered() async throws {
        let tree = try SocketDirectory()
        let path = tree.root + "/control.sock"
        let backend = RecordingBackend(delay: .milliseconds(50))
        let server = try LoopServer(path: path, service: ControlService(policy: ControlPolicy(), backend: backend))
        defer { server.stop() }
        let answers = await withTaskGroup(of: Answer?.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    await onThread {
                        try? ControlClient.send(
                            ControlCall(.status, as: JSONValue.self), to: path, timeout: .seconds(10))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0 == .success(RecordingBackend.result(.status)) }, "\(answers)")
        #expect(backend.commands.count == 5)
    }
}
