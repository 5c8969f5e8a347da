#compdef nicroutectl

__nicroutectl_complete() {
    local -ar non_empty_completions=("${@:#(|:*)}")
    local -ar empty_completions=("${(M)@:#(|:*)}")
    _describe -V '' non_empty_completions -- empty_completions -P $'\'\''
}

__nicroutectl_custom_complete() {
    local -a completions
    completions=("${(@f)"$("${command_name}" "${@}" "${command_line[@]}")"}")
    if [[ "${#completions[@]}" -gt 1 ]]; then
        __nicroutectl_complete "${completions[@]:0:-1}"
    fi
}

__nicroutectl_cursor_index_in_current_word() {
    if [[ -z "${QIPREFIX}${IPREFIX}${PREFIX}" ]]; then
        printf 0
    else
        printf %s "${#${(z)LBUFFER}[-1]}"
    fi
}

_nicroutectl() {
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
        '--control-socket[nicrouted'\''s control socket.]:path:'
        '--config[Configuration file for the one-shot mode (drop-ins in PATH.d/).]:path:'
        '--state-dir[State directory for the one-shot mode.]:path:'
        '*--manage[Interface patterns for the one-shot mode, instead of the default selection.]:glob\[,glob...\]:'
        '--json[Print JSON (status, plan, check).]'
        '(--quiet -q)'{--quiet,-q}'[Print nothing but errors (reconfigure, flush, check).]'
        '(--verbose -v)'{--verbose,-v}'[Also log on stderr what is done (reconfigure, flush, check).]'
        '*--to[For check\: the outside destination, one per family (default\: 192.0.2.1 and 2001\:db8\:\:1).]:address:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'status:Show managed NICs: addresses, gateway and its source, table, rules, last change; then preflight findings.'
            'plan:Print the changes a reconcile would make, as ip commands.'
            'check:Ask the kernel whether each managed address answers through its own NIC.'
            'reconfigure:Reload the configuration and reconcile now (without a daemon: one pass as root, then exit).'
            'flush:Remove every rule and route nicroute owns (a running daemon then pauses until reconfigure).'
            'help:Show subcommand help information.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        status|plan|check|reconfigure|flush|help)
            "_nicroutectl_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_nicroutectl_status() {
    local -i ret=1
    local -ar arg_specs=(
        '--control-socket[nicrouted'\''s control socket.]:path:'
        '--config[Configuration file for the one-shot mode (drop-ins in PATH.d/).]:path:'
        '--state-dir[State directory for the one-shot mode.]:path:'
        '*--manage[Interface patterns for the one-shot mode, instead of the default selection.]:glob\[,glob...\]:'
        '--json[Print JSON (status, plan, check).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_nicroutectl_plan() {
    local -i ret=1
    local -ar arg_specs=(
        '--control-socket[nicrouted'\''s control socket.]:path:'
        '--config[Configuration file for the one-shot mode (drop-ins in PATH.d/).]:path:'
        '--state-dir[State directory for the one-shot mode.]:path:'
        '*--manage[Interface patterns for the one-shot mode, instead of the default selection.]:glob\[,glob...\]:'
        '--json[Print JSON (status, plan, check).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_nicroutectl_check() {
    local -i ret=1
    local -ar arg_specs=(
        '--control-socket[nicrouted'\''s control socket.]:path:'
        '--config[Configuration file for the one-shot mode (drop-ins in PATH.d/).]:path:'
        '--state-dir[State directory for the one-shot mode.]:path:'
        '*--manage[Interface patterns for the one-shot mode, instead of the default selection.]:glob\[,glob...\]:'
        '--json[Print JSON (status, plan, check).]'
        '(--quiet -q)'{--quiet,-q}'[Print nothing but errors (reconfigure, flush, check).]'
        '(--verbose -v)'{--verbose,-v}'[Also log on stderr what is done (reconfigure, flush, check).]'
        '*--to[For check\: the outside destination, one per family (default\: 192.0.2.1 and 2001\:db8\:\:1).]:address:'
        '*:address:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_nicroutectl_reconfigure() {
    local -i ret=1
    local -ar arg_specs=(
        '--control-socket[nicrouted'\''s control socket.]:path:'
        '--config[Configuration file for the one-shot mode (drop-ins in PATH.d/).]:path:'
        '--state-dir[State directory for the one-shot mode.]:path:'
        '*--manage[Interface patterns for the one-shot mode, instead of the default selection.]:glob\[,glob...\]:'
        '(--quiet -q)'{--quiet,-q}'[Print nothing but errors (reconfigure, flush, check).]'
        '(--verbose -v)'{--verbose,-v}'[Also log on stderr what is done (reconfigure, flush, check).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_nicroutectl_flush() {
    local -i ret=1
    local -ar arg_specs=(
        '--control-socket[nicrouted'\''s control socket.]:path:'
        '--config[Configuration file for the one-shot mode (drop-ins in PATH.d/).]:path:'
        '--state-dir[State directory for the one-shot mode.]:path:'
        '*--manage[Interface patterns for the one-shot mode, instead of the default selection.]:glob\[,glob...\]:'
        '(--quiet -q)'{--quiet,-q}'[Print nothing but errors (reconfigure, flush, check).]'
        '(--verbose -v)'{--verbose,-v}'[Also log on stderr what is done (reconfigure, flush, check).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_nicroutectl_help() {
    local -i ret=1
    local -ar arg_specs=(
        '*:subcommands:'
        '--version[Show the version.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

if [[ "${funcstack[1]}" = _nicroutectl ]]; then
    _nicroutectl "${@}"
else
    compdef _nicroutectl nicroutectl
fi
