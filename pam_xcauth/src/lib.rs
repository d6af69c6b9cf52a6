//! pam_xcauth (in progress)
