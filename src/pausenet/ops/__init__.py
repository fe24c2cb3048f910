"""Operations: the `pausenet` command line, local clusters, the offline demo, federation set-up,
rendering for people and logging set-up. Built on `pausenet.client`, `pausenet.node` and
`pausenet.core`; nothing below imports from here."""
