// The release build's one binary: nicrouted or nicroutectl by the name it is run under
// (installed as /usr/bin/nicrouted, with /usr/bin/nicroutectl a symlink to it).
import NicrouteCommands

NicrouteCommands.multicall()
