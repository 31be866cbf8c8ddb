_qctl_completion() {
    local IFS=$'\n' line=${COMP_LINE:0:$COMP_POINT} cur=${COMP_WORDS[COMP_CWORD]}
    local -a words
    IFS=$' \t' read -ra words <<< "$line"
    local cword=${#words[@]}
    [[ $line == *[[:space:]] ]] && words+=("") || cword=$((cword - 1))
    local full=${words[cword]} lead=""
    [[ $full != "$cur" && $full == *"$cur" ]] && lead=${full%"$cur"}
    local -a replies
    replies=( $( env COMP_WORDS="${words[*]}" COMP_CWORD=$cword _QCTL_COMPLETE=complete_bash $1 ) )
    COMPREPLY=()
    local reply
    for reply in "${replies[@]}"; do COMPREPLY+=("${reply#"$lead"}"); done
    return 0
}

complete -o default -F _qctl_completion qctl
