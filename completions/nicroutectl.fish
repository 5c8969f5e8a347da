function __nicroutectl_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __nicroutectl_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __nicroutectl_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __nicroutectl_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __nicroutectl_parse_tokens -S
    set -l unparsed_tokens (__nicroutectl_tokens -pc)
    switch $unparsed_tokens[1]
    case 'nicroutectl'
        __nicroutectl_parse_subcommand 0 'control-socket=' 'config=' 'state-dir=' 'manage=+' 'json' 'q/quiet' 'v/verbose' 'to=+' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'status'
            __nicroutectl_parse_subcommand 0 'control-socket=' 'config=' 'state-dir=' 'manage=+' 'json' 'version' 'h/help'
        case 'plan'
            __nicroutectl_parse_subcommand 0 'control-socket=' 'config=' 'state-dir=' 'manage=+' 'json' 'version' 'h/help'
        case 'check'
            __nicroutectl_parse_subcommand -r 1 'control-socket=' 'config=' 'state-dir=' 'manage=+' 'json' 'q/quiet' 'v/verbose' 'to=+' 'version' 'h/help'
        case 'reconfigure'
            __nicroutectl_parse_subcommand 0 'control-socket=' 'config=' 'state-dir=' 'manage=+' 'q/quiet' 'v/verbose' 'version' 'h/help'
        case 'flush'
            __nicroutectl_parse_subcommand 0 'control-socket=' 'config=' 'state-dir=' 'manage=+' 'q/quiet' 'v/verbose' 'version' 'h/help'
        case 'help'
            __nicroutectl_parse_subcommand -r 1 'version'
        end
    end
end

function __nicroutectl_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __nicroutectl_parse_subcommand -S -a positional_count
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

function __nicroutectl_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __nicroutectl_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__nicroutectl_tokens -p)
    if test -z "$(__nicroutectl_tokens -t)"
        set -l index (count (__nicroutectl_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'nicroutectl' -f
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" control-socket' -l 'control-socket' -d 'nicrouted\'s control socket.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" config' -l 'config' -d 'Configuration file for the one-shot mode (drop-ins in PATH.d/).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" state-dir' -l 'state-dir' -d 'State directory for the one-shot mode.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl"' -l 'manage' -d 'Interface patterns for the one-shot mode, instead of the default selection.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" json' -l 'json' -d 'Print JSON (status, plan, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" q quiet' -l 'quiet' -s 'q' -d 'Print nothing but errors (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" v verbose' -l 'verbose' -s 'v' -d 'Also log on stderr what is done (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl"' -l 'to' -d 'For check: the outside destination, one per family (default: 192.0.2.1 and 2001:db8::1).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" version' -l 'version' -d 'Show the version.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_positional "nicroutectl" -eq 1' -fa 'status' -d 'Show managed NICs: addresses, gateway and its source, table, rules, last change; then preflight findings.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_positional "nicroutectl" -eq 1' -fa 'plan' -d 'Print the changes a reconcile would make, as ip commands.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_positional "nicroutectl" -eq 1' -fa 'check' -d 'Ask the kernel whether each managed address answers through its own NIC.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_positional "nicroutectl" -eq 1' -fa 'reconfigure' -d 'Reload the configuration and reconcile now (without a daemon: one pass as root, then exit).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_positional "nicroutectl" -eq 1' -fa 'flush' -d 'Remove every rule and route nicroute owns (a running daemon then pauses until reconfigure).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_positional "nicroutectl" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl status" control-socket' -l 'control-socket' -d 'nicrouted\'s control socket.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl status" config' -l 'config' -d 'Configuration file for the one-shot mode (drop-ins in PATH.d/).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl status" state-dir' -l 'state-dir' -d 'State directory for the one-shot mode.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl status"' -l 'manage' -d 'Interface patterns for the one-shot mode, instead of the default selection.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl status" json' -l 'json' -d 'Print JSON (status, plan, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl status" version' -l 'version' -d 'Show the version.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl plan" control-socket' -l 'control-socket' -d 'nicrouted\'s control socket.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl plan" config' -l 'config' -d 'Configuration file for the one-shot mode (drop-ins in PATH.d/).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl plan" state-dir' -l 'state-dir' -d 'State directory for the one-shot mode.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl plan"' -l 'manage' -d 'Interface patterns for the one-shot mode, instead of the default selection.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl plan" json' -l 'json' -d 'Print JSON (status, plan, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl plan" version' -l 'version' -d 'Show the version.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl plan" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" control-socket' -l 'control-socket' -d 'nicrouted\'s control socket.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" config' -l 'config' -d 'Configuration file for the one-shot mode (drop-ins in PATH.d/).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" state-dir' -l 'state-dir' -d 'State directory for the one-shot mode.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check"' -l 'manage' -d 'Interface patterns for the one-shot mode, instead of the default selection.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" json' -l 'json' -d 'Print JSON (status, plan, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" q quiet' -l 'quiet' -s 'q' -d 'Print nothing but errors (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" v verbose' -l 'verbose' -s 'v' -d 'Also log on stderr what is done (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check"' -l 'to' -d 'For check: the outside destination, one per family (default: 192.0.2.1 and 2001:db8::1).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" version' -l 'version' -d 'Show the version.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure" control-socket' -l 'control-socket' -d 'nicrouted\'s control socket.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure" config' -l 'config' -d 'Configuration file for the one-shot mode (drop-ins in PATH.d/).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure" state-dir' -l 'state-dir' -d 'State directory for the one-shot mode.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure"' -l 'manage' -d 'Interface patterns for the one-shot mode, instead of the default selection.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure" q quiet' -l 'quiet' -s 'q' -d 'Print nothing but errors (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure" v verbose' -l 'verbose' -s 'v' -d 'Also log on stderr what is done (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure" version' -l 'version' -d 'Show the version.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl reconfigure" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush" control-socket' -l 'control-socket' -d 'nicrouted\'s control socket.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush" config' -l 'config' -d 'Configuration file for the one-shot mode (drop-ins in PATH.d/).' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush" state-dir' -l 'state-dir' -d 'State directory for the one-shot mode.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush"' -l 'manage' -d 'Interface patterns for the one-shot mode, instead of the default selection.' -rfka ''
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush" q quiet' -l 'quiet' -s 'q' -d 'Print nothing but errors (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush" v verbose' -l 'verbose' -s 'v' -d 'Also log on stderr what is done (reconfigure, flush, check).'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush" version' -l 'version' -d 'Show the version.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl flush" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'nicroutectl' -n '__nicroutectl_should_offer_completions_for_flags_or_options "nicroutectl help" version' -l 'version' -d 'Show the version.'
