#compdef nicrouted

__nicrouted_complete() {
    local -ar non_empty_completions=("${@:#(|:*)}")
    local -ar empty_completions=("${(M)@:#(|:*)}")
    _describe -V '' non_empty_completions -- empty_completions -P $'\'\''
}

__nicrouted_custom_complete() {
    local -a completions
    completions=("${(@f)"$("${command_name}" "${@}" "${command_line[@]}")"}")
    if [[ "${#completions[@]}" -gt 1 ]]; then
        __nicrouted_complete "${completions[@]:0:-1}"
    fi
}

__nicrouted_cursor_index_in_current_word() {
    if [[ -z "${QIPREFIX}${IPREFIX}${PREFIX}" ]]; then
        printf 0
    else
        printf %s "${#${(z)LBUFFER}[-1]}"
    fi
}

_nicrouted() {
    emulate -RL zsh -G
    setopt extendedglob nullglob numericglobsort
    unsetopt aliases banghist

    local -xr SAP_SHELL=zsh
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(builtin emulate zsh -c 'printf %s "${ZSH_VERSION}"')"
    local -r SAP_SHELL_VERSION

    local context state state_descr line
    local -A opt_args

    local -r command_name="${words[1]}"
    local -ar command_line=("${words[@]}")
    local -ir current_word_index="$((CURRENT - 1))"

    local -i ret=1
    local -ar arg_specs=(
        '--config[Configuration file; drop-ins are read from PATH.d/*.conf.]:path:'
        '--state-dir[State directory holding the NIC slot table.]:path:'
        '*--manage[Interface name patterns or MAC addresses to manage, replacing the default selection of physical NICs (comma separated; repeatable).]:glob\[,glob...\]:'
        '--control-socket[Control socket path (default\: \[Control\] Socket=, /run/nicroute/control.sock).]:path:'
        '--log-level[Log level\: trace, debug, info, notice, warning, error.]:level:'
        '--coalesce-ms[Milliseconds to wait after the first event of a burst before acting (0\: act at once, on what has arrived; what arrives during a pass makes one more pass).]:ms:'
        '--check-config[Check the configuration, print it, and exit.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'help:Show subcommand help information.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        help)
            "_nicrouted_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_nicrouted_help() {
    local -i ret=1
    local -ar arg_specs=(
        '*:subcommands:'
        '--version[Show the version.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

if [[ "${funcstack[1]}" = _nicrouted ]]; then
    _nicrouted "${@}"
else
    compdef _nicrouted nicrouted
fi
