// nicrouted alone, for development and tests; the release build ships nicroute-multicall.
import NicrouteCommands

NicrouteCommands.nicrouted()
