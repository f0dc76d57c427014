//! The IMAP client: transport, framing with streamed literals, authentication, commands.
