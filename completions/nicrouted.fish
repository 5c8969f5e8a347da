function __nicrouted_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __nicrouted_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __nicrouted_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __nicrouted_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __nicrouted_parse_tokens -S
    set -l unparsed_tokens (__nicrouted_tokens -pc)
    switch $unparsed_tokens[1]
    case 'nicrouted'
        __nicrouted_parse_subcommand 0 'config=' 'state-dir=' 'manage=+' 'control-socket=' 'log-level=' 'coalesce-ms=' 'check-config' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __nicrouted_parse_subcommand -r 1 'version'
        end
    end
end

function __nicrouted_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __nicrouted_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __nicrouted_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __nicrouted_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__nicrouted_tokens -p)
    if test -z "$(__nicrouted_tokens -t)"
        set -l index (count (__nicrouted_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'nicrouted' -f
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" config' -l 'config' -d 'Configuration file; drop-ins are read from PATH.d/*.conf.' -rfka ''
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" state-dir' -l 'state-dir' -d 'State directory holding the NIC slot table.' -rfka ''
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted"' -l 'manage' -d 'Interface name patterns or MAC addresses to manage, replacing the default selection of physical NICs (comma separated; repeatable).' -rfka ''
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" control-socket' -l 'control-socket' -d 'Control socket path (default: [Control] Socket=, /run/nicroute/control.sock).' -rfka ''
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" log-level' -l 'log-level' -d 'Log level: trace, debug, info, notice, warning, error.' -rfka ''
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" coalesce-ms' -l 'coalesce-ms' -d 'Milliseconds to wait after the first event of a burst before acting (0: act at once, on what has arrived; what arrives during a pass makes one more pass).' -rfka ''
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" check-config' -l 'check-config' -d 'Check the configuration, print it, and exit.'
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" version' -l 'version' -d 'Show the version.'
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_positional "nicrouted" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'nicrouted' -n '__nicrouted_should_offer_completions_for_flags_or_options "nicrouted help" version' -l 'version' -d 'Show the version.'
