# The lab forest: a first DC (dc1) with Samba's internal DNS, the KDC and RPC, a second
# writable DC (dc2) and a read-only DC (rodc1) joined to it, all of the domain
# LAB.EXAMPLE.TEST. Sourced by lab/up (which defines provision_base, sam_ldb_tool, apply_ldif).
# shellcheck shell=bash

# The forest's members, in start order; dc1 is the first DC, the one that serves the realm's DNS.
FOREST_MEMBERS=(dc1 dc2 rodc1)

# Test accounts of the forest template (CN=Users), each with a random password in
# <name>-password and its secrets preloaded on rodc1 (so that it can bind there, as an account
# of the RODC's Allowed password replication policy can on Windows):
#   svc-agent     Read and Write Property on every object of the domain (an inherited allow ACE
#                 on the domain head): the agent's service account;
#   svc-kerberos  a keytab (svc-kerberos.keytab, samba-tool domain exportkeytab);
#   svc-noread    denied Read Property on extensionAttribute15 everywhere in the domain (an
#                 inherited deny ACE on the domain head): attributes a service account cannot read;
#   plainuser     an ordinary user with the default rights only (what a user may write on itself).
FOREST_ACCOUNTS=(svc-agent svc-kerberos svc-noread plainuser)
# schemaIDGUID of extensionAttribute15 (lab/exchange-schema.ldif)
FOREST_DENIED_ATTRIBUTE_GUID=167757fa-47f3-11d1-a9c3-0000f80367c1

# member_profile ROOT NAME: the .dc-profile of forest member NAME (netbios name, services, FQDN).
# Only dc1 runs the DNS service: it is the realm's DNS server (the others' copies of the zones
# would be partial: each DC registers its records in dc1's zones).
member_profile() {
    local root=$1 name=$2 services=$LAB_FOREST_SERVICES
    [[ "$name" == dc1 ]] || services=${services/, dns/}
    mkdir -p "$root"
    printf 'NETBIOS=%s\nSERVICES=%s\nFQDN=%s.%s\nMEMBER=%s\n' \
        "${name^^}" "$services" "$name" "${LAB_REALM,,}" "$name" >"$root/.dc-profile"
}

# unicode_pwd PASSWORD: the base64 of "PASSWORD" in UTF-16LE (an LDIF unicodePwd:: value).
unicode_pwd() {
    printf '"%s"' "$1" | iconv -t UTF-16LE | base64 -w0
}

# add_forest_accounts TPL: the test accounts, offline in TPL/dc1's database (before the joins,
# so every member holds them), their passwords in TPL/<name>-password (0600), the keytab, and
# the deny ACE.
add_forest_accounts() {
    local tpl=$1 root=$1/dc1 name password sid out
    : >"$tpl/accounts.ldif"
    for name in "${FOREST_ACCOUNTS[@]}"; do
        password="Svc-$(openssl rand -hex 10)-Q7"
        (umask 077 && printf '%s' "$password" >"$tpl/$name-password")
        # 66048 = NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
        printf 'dn: CN=%s,CN=Users,%s\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@%s\nuserAccountControl: 66048\nunicodePwd:: %s\n\n' \
            "$name" "$LAB_BASE_DN" "$name" "$name" "${LAB_REALM,,}" "$(unicode_pwd "$password")" >>"$tpl/accounts.ldif"
    done
    apply_ldif ldbadd "$root" "$tpl/accounts.ldif" "${#FOREST_ACCOUNTS[@]}" "adding the forest's test accounts"
    rm -f "$tpl/accounts.ldif"

    if ! out=$(samba-tool domain exportkeytab "$tpl/svc-kerberos.keytab" \
        --principal="svc-kerberos@$LAB_REALM" -s "$root/etc/smb.conf" 2>&1) ||
        [[ ! -s "$tpl/svc-kerberos.keytab" ]]; then
        echo "$out" | tail -5 >&2
        die "samba-tool domain exportkeytab produced no keytab for svc-kerberos"
    fi
    chmod 0600 "$tpl/svc-kerberos.keytab"

    # (A;CI;RPWP;;;<svc-agent>): read and write every property of every object below;
    # (OD;CI;RP;<extensionAttribute15>;;<svc-noread>): deny reading that attribute anywhere.
    add_ace "$root" svc-agent "(A;CI;RPWP;;;%s)"
    add_ace "$root" svc-noread "(OD;CI;RP;$FOREST_DENIED_ATTRIBUTE_GUID;;%s)"
}

# add_ace ROOT ACCOUNT SDDL_FORMAT: adds an ACE for ACCOUNT (its SID put into the format's %s)
# to the domain head's security descriptor, offline.
add_ace() {
    local root=$1 account=$2 format=$3 sid out ace
    sid=$(sam_ldb_tool ldbsearch "$root" -b "CN=$account,CN=Users,$LAB_BASE_DN" -s base objectSid |
        sed -n 's/^objectSid: //p')
    [[ "$sid" == S-1-5-21-* ]] || die "no objectSid for $account"
    # shellcheck disable=SC2059
    ace=$(printf "$format" "$sid")
    if ! out=$(samba-tool dsacl set -H "$root/private/sam.ldb" -s "$root/etc/smb.conf" \
        --objectdn="$LAB_BASE_DN" --sddl="$ace" 2>&1); then
        echo "$out" | tail -5 >&2
        die "samba-tool dsacl set $ace ($account) failed"
    fi
}

# preload_rodc TPL DC1_ADDR: caches the test accounts' secrets on the running rodc1.
preload_rodc() {
    local tpl=$1 dc1=$2 out
    if ! out=$(PASSWD_FILE="$tpl/dc1/admin-password" samba-tool rodc preload "${FOREST_ACCOUNTS[@]}" \
        --server="$dc1" -s "$tpl/rodc1/etc/smb.conf" -U Administrator --use-kerberos=off 2>&1); then
        echo "$out" | tail -5 >&2
        die "samba-tool rodc preload of the test accounts failed"
    fi
}

# join_member TPL NAME ROLE ADDR DC1_ADDR: joins NAME (ROLE DC or RODC) to the running dc1.
join_member() {
    local tpl=$1 name=$2 role=$3 addr=$4 dc1_addr=$5 root out
    root=$tpl/$name
    mkdir -p "$root"/{etc,private,lock,state,cache,bind-dns,run,log,tls}
    member_profile "$root" "$name"
    write_smb_conf "$root" "$addr"
    if ! out=$(PASSWD_FILE="$tpl/dc1/admin-password" samba-tool domain join "${LAB_REALM,,}" "$role" \
        -s "$root/etc/smb.conf" --targetdir="$root" --server="$dc1_addr" -U Administrator \
        --use-kerberos=off --dns-backend=SAMBA_INTERNAL --backend-store=mdb 2>&1); then
        echo "$out" | grep -v '^INFO\|^Partition\|^Repack' | tail -20 >&2
        die "samba-tool domain join $role of $name failed"
    fi
    write_smb_conf "$root" # join may have rewritten it; keep ours, without an address
    cp "$tpl/dc1/admin-password" "$root/admin-password"
    cp "$tpl/dc1/tls/ca.pem" "$tpl/dc1/tls/ca-key.pem" "$root/tls/"
}

# register_rodc_dns TPL DC1_ADDR RODC_ADDR: the records Samba's dns_update_list gives a
# read-only DC -- its A record and the site-specific SRV records only; an RODC registers no
# domain-wide (generic) locator record -- added in dc1's DNS as Administrator (the RODC's own
# machine account is refused there: WERR_ACCESS_DENIED).
register_rodc_dns() {
    local tpl=$1 dc1=$2 addr=$3 zone name type data out fqdn=rodc1.${LAB_REALM,,} site=Default-First-Site-Name
    while IFS='|' read -r zone name type data; do
        if ! out=$(PASSWD_FILE="$tpl/dc1/admin-password" samba-tool dns add "$dc1" "$zone" "$name" "$type" "$data" \
            -U Administrator --use-kerberos=off -s "$tpl/dc1/etc/smb.conf" 2>&1); then
            echo "$out" | tail -5 >&2
            die "registering $name $type $data for rodc1 in dc1's DNS failed"
        fi
    done <<RECORDS
${LAB_REALM,,}|rodc1|A|$addr
${LAB_REALM,,}|_ldap._tcp.$site._sites|SRV|$fqdn 389 0 100
${LAB_REALM,,}|_kerberos._tcp.$site._sites|SRV|$fqdn 88 0 100
_msdcs.${LAB_REALM,,}|_ldap._tcp.$site._sites.dc|SRV|$fqdn 389 0 100
_msdcs.${LAB_REALM,,}|_kerberos._tcp.$site._sites.dc|SRV|$fqdn 88 0 100
RECORDS
}

# add_ldap_spns TPL: the ldap/ service principal names a Windows DC registers on its computer
# account (ldap/<fqdn>, ldap/<fqdn>/<domain>, ldap/<NETBIOS>), which Samba 4.17 does not add --
# its KDC then answers a ticket request for ldap/dc1.lab.example.test with "Server not found in
# Kerberos database". Offline, in the databases of the KDCs of krb5.conf (dc1 and dc2).
add_ldap_spns() {
    local tpl=$1 member name domain=${LAB_REALM,,} count
    for member in dc1 dc2; do
        : >"$tpl/spns.ldif"
        count=0
        for name in "${FOREST_MEMBERS[@]}"; do
            # dc2 was joined before rodc1 and replicates no more: it does not know rodc1.
            [[ "$member" == dc2 && "$name" == rodc1 ]] && continue
            printf 'dn: CN=%s,OU=Domain Controllers,%s\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: ldap/%s.%s\nservicePrincipalName: ldap/%s.%s/%s\nservicePrincipalName: ldap/%s\n\n' \
                "${name^^}" "$LAB_BASE_DN" "$name" "$domain" "$name" "$domain" "$domain" "${name^^}" >>"$tpl/spns.ldif"
            count=$((count + 1))
        done
        apply_ldif ldbmodify "$tpl/$member" "$tpl/spns.ldif" "$count" "adding the DCs' ldap/ SPNs ($member)"
    done
    rm -f "$tpl/spns.ldif"
}

# build_forest TPL A1 A2 A3: the forest template in TPL, built on the free addresses A1..A3.
build_forest() {
    local tpl=$1 out name i
    local -a addrs=("$2" "$3" "$4")
    member_profile "$tpl/dc1" dc1
    provision_base "$tpl/dc1" 1 SAMBA_INTERNAL "${addrs[0]}"
    add_forest_accounts "$tpl"
    write_smb_conf "$tpl/dc1" "${addrs[0]}"
    make_server_cert "$tpl/dc1" "${addrs[0]}"
    start_dc "$tpl/dc1" "${addrs[0]}" 600 || { stop_dc "$tpl/dc1"; die "dc1 of the forest template did not start"; }
    join_member "$tpl" dc2 DC "${addrs[1]}" "${addrs[0]}"
    join_member "$tpl" rodc1 RODC "${addrs[2]}" "${addrs[0]}"
    # The joined DCs' SRV and A records, registered in dc1's DNS (the realm's DNS server of
    # the lab) as samba_dnsupdate does at a DC's start, over RPC with the DC's machine account.
    for i in 1 2; do
        name=${FOREST_MEMBERS[$i]}
        write_smb_conf "$tpl/$name" "${addrs[$i]}"
        make_server_cert "$tpl/$name" "${addrs[$i]}"
        start_dc "$tpl/$name" "${addrs[$i]}" 600 || {
            grep -v '^$' "$tpl/$name/log/log.samba" | tail -20 >&2
            stop_dc "$tpl/$name"; stop_dc "$tpl/dc1"; die "$name of the forest template did not start"
        }
        # An RODC may not update the records other DCs own (WERR_ACCESS_DENIED for the
        # domain-wide A and NS records): what it registers is what Samba lets it register.
        if ! out=$(samba_dnsupdate -s "$tpl/$name/etc/smb.conf" --use-samba-tool --no-credentials --all-names \
            --current-ip="${addrs[$i]}" --rpc-server-ip="${addrs[0]}" 2>&1) && [[ "$name" != rodc1 ]]; then
            echo "$out" | tail -20 >&2
            stop_dc "$tpl/$name"; stop_dc "$tpl/dc1"
            die "samba_dnsupdate of $name into dc1's DNS failed"
        fi
        if [[ "$name" == rodc1 ]]; then
            register_rodc_dns "$tpl" "${addrs[0]}" "${addrs[2]}"
            preload_rodc "$tpl" "${addrs[0]}"
        fi
        stop_dc "$tpl/$name"
    done
    stop_dc "$tpl/dc1"
    add_ldap_spns "$tpl"
    for name in "${FOREST_MEMBERS[@]}"; do
        rm -f "$tpl/$name/samba.pid" "$tpl/$name/tls/server.pem" "$tpl/$name/tls/server-key.pem"
        rm -rf "$tpl/$name/log" && mkdir -p "$tpl/$name/log"
        write_smb_conf "$tpl/$name"
    done
    echo "${addrs[*]}" >"$tpl/.forest-addrs"
}

# forest_instance TPL NAME DIR ADDR A1 A2 A3: copies member NAME of the forest template into
# DIR for the addresses A1..A3 (dc1, dc2, rodc1): its DNS records readdressed, the keytab, the
# test accounts' passwords and a krb5.conf naming the KDCs of the instance.
forest_instance() {
    local tpl=$1 name=$2 dir=$3 addr=$4 i old
    local -a new=("$5" "$6" "$7") map=()
    read -r -a old <"$tpl/.forest-addrs"
    copy_tree "$tpl/$name" "$dir" "$addr"
    for i in 0 1 2; do
        map+=("${old[$i]}=${new[$i]}")
    done
    if [[ "$name" == dc1 ]]; then
        "$here/dns-readdress" "$dir" "${map[@]}" 2>/dev/null ||
            die "readdressing the DNS records of $name in $dir failed"
    fi
    cp "$tpl/svc-kerberos.keytab" "$dir/"
    for i in "${FOREST_ACCOUNTS[@]}"; do
        cp "$tpl/$i-password" "$dir/"
    done
    cat >"$dir/krb5.conf" <<KRB5
# Written by lab/up: the lab forest's realm and its KDCs; nothing is looked up in DNS.
[libdefaults]
	default_realm = $LAB_REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
[realms]
	$LAB_REALM = {
		kdc = ${new[0]}
		kdc = ${new[1]}
	}
[domain_realm]
	.${LAB_REALM,,} = $LAB_REALM
	${LAB_REALM,,} = $LAB_REALM
KRB5
    printf '%s\n' "${new[@]}" >"$dir/forest-addrs"
}
